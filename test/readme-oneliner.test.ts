import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { buildCli, plinth, repo } from "./support/cli.js"
import { writePlugin } from "./support/plugins.js"

/*
 * The README's coreutils one-liner, read from README.md itself so the two
 * cannot drift, must print the digest `plinth plugins lock` pins, for every
 * file name the lock accepts.
 */

const readme = readFileSync(join(repo, "README.md"), "utf8")
const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1]!)
const oneLiner = blocks.filter((block) => block.includes("sha256sum"))

/** Runs the README's block with /bin/sh in `cwd`; it starts with `cd examples/plugins/text-tools`. */
const recompute = (cwd: string) => execFileSync("/bin/sh", ["-c", oneLiner[0]!], { cwd, encoding: "utf8" }).trim()

const lockedDigest = (lockFile: string, id: string) =>
  (JSON.parse(readFileSync(lockFile, "utf8")) as { plugins: Record<string, { digest: string }> }).plugins[id]!.digest

beforeAll(() => buildCli())

describe("the README's coreutils one-liner", () => {
  it("is in the README exactly once", () => {
    expect(oneLiner).toHaveLength(1)
    expect(oneLiner[0]).toMatch(/^cd examples\/plugins\/text-tools &&\n/)
  })

  it("prints the digest plinth locks for files named -x.js, 'a b', ü and lib/--help", async () => {
    const dir = mkdtempSync(join(tmpdir(), "plinth-oneliner-"))
    const root = join(dir, "examples/plugins")
    writePlugin(root, {
      id: "text-tools",
      files: { "index.js": "export default {}\n", "-x.js": "dash\n", "a b": "space\n", "ü": "umlaut\n", "lib/--help": "flag\n" },
    })
    const locked = await plinth(dir, ["plugins", "lock", "--root", "examples/plugins", "--lock", "PLUGINS.lock"])
    expect(locked.code, locked.stderr).toBe(0)
    const expected = lockedDigest(join(dir, "PLUGINS.lock"), "text-tools")
    expect(Object.keys((JSON.parse(readFileSync(join(dir, "PLUGINS.lock"), "utf8")) as any).plugins["text-tools"].files).sort()).toEqual(
      ["-x.js", "a b", "index.js", "lib/--help", "plugin.json", "ü"].sort(),
    )
    expect(recompute(dir)).toBe(expected)
  })

  it("prints the digest the repository's lock holds for the example it names", () => {
    expect(recompute(repo)).toBe(lockedDigest(join(repo, "PLUGINS.lock"), "text-tools"))
  })
})
