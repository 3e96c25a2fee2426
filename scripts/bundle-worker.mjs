// Bundles the worker runtime (bootstrap, protocol, linker, effect, @plinth/domain)
// into one file, so a worker starts by parsing one module instead of resolving
// and loading a few hundred from node_modules. See ADRs/0012-bundled-worker-runtime.md.
// Run after `tsc -b` (it bundles the compiled output); `npm run build` does both.
import { build } from "esbuild"
import { mkdirSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const runtimeDir = join(dirname(fileURLToPath(import.meta.url)), "..", "packages", "runtime")

const outdir = join(runtimeDir, "dist", "worker-bundle")
const common = { bundle: true, format: "esm", platform: "node", target: "node20", minify: true, legalComments: "none", logLevel: "warning" }

// Two files: the tiny bootstrap reports ready before the runtime bundle is
// even parsed, then imports it (see ADR 0011 for why ready comes first).
export const bundleWorker = async () => {
  mkdirSync(outdir, { recursive: true })
  writeFileSync(join(outdir, "package.json"), JSON.stringify({ type: "module", private: true }) + "\n")
  await build({ ...common, entryPoints: [join(runtimeDir, "dist", "worker", "WorkerRuntime.js")], outfile: join(outdir, "WorkerRuntime.js") })
  // Written last: its mtime is what the host compares with the compiled runtime.
  await build({ ...common, entryPoints: [join(runtimeDir, "dist", "worker", "bootstrap.js")], outfile: join(outdir, "bootstrap.js"), external: ["./WorkerRuntime.js"] })
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await bundleWorker()
