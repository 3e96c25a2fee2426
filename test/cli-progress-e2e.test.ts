import { execFile } from "node:child_process"
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { buildCli, plinth, repo } from "./support/cli.js"

/*
 * Hashing progress is for people at a terminal: the real CLI runs under a
 * pseudo-terminal (util-linux `script`), and with its output piped.
 */

const FILES = 400

/** `plugins/many` with FILES files besides its manifest and entry, and `plugins/few` with just those two. */
const workspace = () => {
  const dir = mkdtempSync(join(tmpdir(), "plinth-progress-"))
  const plugin = join(dir, "plugins/many")
  mkdirSync(join(plugin, "lib"), { recursive: true })
  writeFileSync(join(plugin, "plugin.json"), JSON.stringify({ id: "many", version: "1.0.0", description: "Many files.", entry: "index.js" }))
  writeFileSync(join(plugin, "index.js"), "export default 1\n")
  for (let i = 0; i < FILES; i++) writeFileSync(join(plugin, "lib", `f${i}.js`), `export const n = ${i}\n`.repeat(50))
  const few = join(dir, "plugins/few")
  mkdirSync(few)
  writeFileSync(join(few, "plugin.json"), JSON.stringify({ id: "few", version: "1.0.0", description: "Few files.", entry: "index.js" }))
  writeFileSync(join(few, "index.js"), "export default 2\n")
  return dir
}

const quote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`

/** Runs `plinth` with stdin, stdout and stderr on a pseudo-terminal; resolves with everything the terminal received. */
const plinthOnTerminal = (cwd: string, args: ReadonlyArray<string>): Promise<{ code: number | null; terminal: string }> => {
  const command = [process.execPath, join(repo, "packages/cli/bin/plinth.js"), ...args].map(quote).join(" ")
  return new Promise((resolve) => {
    execFile("script", ["-qfec", command, "/dev/null"], { cwd, env: { ...process.env, NO_COLOR: "1" } }, (error, stdout) =>
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : null, terminal: stdout }),
    )
  })
}

const ERASE = "\r\u001b[K"

const totalsDrawn = (terminal: string) => [...terminal.matchAll(/hashing \d+\/(\d+) files/g)].map((m) => Number(m[1]))
const total = FILES + 4

beforeAll(() => {
  buildCli()
})

describe("hashing progress on stderr", () => {
  // Redraws are throttled (the rate appears from the second one), so which counts are drawn depends on speed: the total is fixed.
  it("on a terminal, lock and verify draw one line rewritten in place, with files hashed of the total, erased before the result", async () => {
    const dir = workspace()
    const locked = await plinthOnTerminal(dir, ["plugins", "lock"])
    expect(locked.code, locked.terminal).toBe(0)
    // Every plugin is counted from the first drawing on: the total does not grow as plugins are reached.
    expect(locked.terminal.startsWith(`${ERASE}hashing 0/${total} files (0%)`)).toBe(true)
    expect(totalsDrawn(locked.terminal).every((drawn) => drawn === total)).toBe(true)
    // The last drawing is erased, then the result follows on a clean line.
    expect(locked.terminal).toMatch(/\r\u001b\[K(?:\r\n)*PLUGINS\.lock written/)
    expect(locked.terminal).not.toMatch(/hashing[^\r]*\n/)

    const verified = await plinthOnTerminal(dir, ["plugins", "verify"])
    expect(verified.code, verified.terminal).toBe(0)
    expect(verified.terminal.startsWith(`${ERASE}hashing 0/${total} files (0%)`)).toBe(true)
    expect(totalsDrawn(verified.terminal).every((drawn) => drawn === total)).toBe(true)
    expect(verified.terminal).toContain("2 plugins verified against PLUGINS.lock")
  }, 60_000)

  it("on a terminal with --json: no progress, only the JSON", async () => {
    const dir = workspace()
    const run = await plinthOnTerminal(dir, ["plugins", "lock", "--json"])
    expect(run.code, run.terminal).toBe(0)
    expect(run.terminal).not.toContain("hashing")
    expect(run.terminal).not.toContain("\u001b[K")
  }, 60_000)

  it("piped: stderr stays empty for lock and verify", async () => {
    const dir = workspace()
    const locked = await plinth(dir, ["plugins", "lock"])
    expect(locked.code).toBe(0)
    expect(locked.stderr).toBe("")
    const verified = await plinth(dir, ["plugins", "verify"])
    expect(verified.code).toBe(0)
    expect(verified.stderr).toBe("")
  }, 60_000)
})
