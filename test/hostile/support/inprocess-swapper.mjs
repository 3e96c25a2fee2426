// Keeps swapping plugin files between a good and an evil version, each swap
// one atomic rename(2) of a staged file over the target, one file after the
// other (so at most one is evil at a time), until it is killed.
// Usage: node inprocess-swapper.mjs <spec.json>, the spec being
// [{ target, staging, good, evil }]; a staging path is outside the plugin
// folder (so the walk never sees it) but on the same file system.
import { readFileSync, renameSync, writeFileSync } from "node:fs"

const swaps = JSON.parse(readFileSync(process.argv[2], "utf8"))
process.stdout.write("swapping\n")
for (;;) {
  for (const swap of swaps) {
    for (const version of ["evil", "good"]) {
      writeFileSync(swap.staging, swap[version])
      renameSync(swap.staging, swap.target)
    }
  }
}
