import { mkdtempSync, renameSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { buildCli, plinth, type Run } from "./support/cli.js"
import { manifestText, writeFiles } from "./support/plugins.js"

/*
 * What a person reads when something is wrong: one line per problem, the file
 * and field, what was expected, and what to run; never Effect's schema dumps
 * or a stack trace.
 */

const manifest = manifestText

/** `plugins/` with two plugins and no lock. */
const workspace = () => {
  const dir = mkdtempSync(join(tmpdir(), "plinth-msg-"))
  writeFiles(join(dir, "plugins/alpha"), { "plugin.json": manifest("alpha"), "index.js": "export default 1\n" })
  writeFiles(join(dir, "plugins/beta"), { "plugin.json": manifest("beta"), "index.js": "export default 2\n" })
  return dir
}

const effectInternals = /<->|Encoded side|Type side|└─|├─|refinement failure|\n\s+at /

const expectHuman = (text: string) => expect(text).not.toMatch(effectInternals)

const json = (run: Run) => JSON.parse(run.stdout) as Record<string, any>

beforeAll(() => {
  buildCli()
})

describe("a missing lock says so and what to run", () => {
  it.each([["verify"], ["list"], ["show", "alpha"]])("plugins %s without a lock: exit 4, LockFileMissing, the command that creates it", async (...args) => {
    const dir = workspace()
    const run = await plinth(dir, ["plugins", ...args])
    expect(run.code, run.stderr).toBe(4)
    expect(run.stderr.trim()).toBe(
      "rejected [LockFileMissing]: no lock file at PLUGINS.lock; create one with: plinth plugins lock --root plugins",
    )
    const machine = await plinth(dir, ["plugins", ...args, "--json"])
    expect(machine.code).toBe(4)
    expect(JSON.stringify(json(machine))).toContain('"_tag":"LockFileMissing"')
  })

  it("names the --lock and --root given, quoted for the shell when needed", async () => {
    const dir = workspace()
    renameSync(join(dir, "plugins"), join(dir, "my plugins"))
    const run = await plinth(dir, ["plugins", "verify", "--root", "my plugins", "--lock", "locks/team.lock"])
    expect(run.code).toBe(4)
    expect(run.stderr).toContain("no lock file at locks/team.lock; create one with: plinth plugins lock --root 'my plugins' --lock locks/team.lock")
  })

  it("lock --check without a lock: exit 3, 'no lock yet' and what to run; nothing written", async () => {
    const dir = workspace()
    const run = await plinth(dir, ["plugins", "lock", "--check"])
    expect(run.code).toBe(3)
    expect(run.stdout).toContain("no lock yet at PLUGINS.lock: 2 plugins to pin")
    expect(run.stderr.trim()).toBe(
      "no lock yet: there is no lock file at PLUGINS.lock; review the plugins, then create it with: plinth plugins lock --root plugins",
    )
    const machine = await plinth(dir, ["plugins", "lock", "--check", "--json"])
    expect(machine.code).toBe(3)
    expect(json(machine)).toMatchObject({ ok: false, error: { _tag: "LockOutOfDate", lock: "PLUGINS.lock", missing: true } })
    expect(json(machine).error.message).toContain("there is no lock file at PLUGINS.lock")
    const created = await plinth(dir, ["plugins", "lock"])
    expect(created.code, created.stderr).toBe(0)
    expect((await plinth(dir, ["plugins", "lock", "--check"])).code).toBe(0)
  })
})

describe("rejections name the lock file given with --lock", () => {
  it("an unlocked plugin and a changed plugin name team.lock, not PLUGINS.lock", async () => {
    const dir = workspace()
    expect((await plinth(dir, ["plugins", "lock", "--lock", "team.lock"])).code).toBe(0)
    writeFiles(join(dir, "plugins/gamma"), { "plugin.json": manifest("gamma"), "index.js": "export default 3\n" })
    const unlocked = await plinth(dir, ["plugins", "verify", "--lock", "team.lock"])
    expect(unlocked.code).toBe(4)
    expect(unlocked.stderr).toContain("plugin 'gamma' is not in team.lock: review it, then run 'plinth plugins lock --lock team.lock'")
    expect(unlocked.stderr).not.toContain("PLUGINS.lock")

    expect((await plinth(dir, ["plugins", "lock", "--lock", "team.lock"])).code).toBe(0)
    writeFileSync(join(dir, "plugins/alpha/index.js"), "export default 'changed'\n")
    const changed = await plinth(dir, ["plugins", "verify", "--lock", "team.lock", "--json"])
    expect(changed.code).toBe(4)
    expect(JSON.stringify(json(changed))).toContain('"lock":"team.lock"')
    const human = await plinth(dir, ["plugins", "verify", "--lock", "team.lock"])
    expect(human.stderr).toContain("plugin 'alpha' does not match team.lock")
  })
})

describe("schema and syntax failures in plain words", () => {
  it("a bad version in plugin.json: one line with the file, the field, the expectation and the value", async () => {
    const dir = workspace()
    expect((await plinth(dir, ["plugins", "lock"])).code).toBe(0)
    writeFileSync(join(dir, "plugins/alpha/plugin.json"), manifest("alpha", { version: "0.1" }))
    for (const args of [["lock"], ["verify"], ["list"]]) {
      const run = await plinth(dir, ["plugins", ...args])
      expect(run.code, `${args}: ${run.stderr}`).toBe(4)
      expect(run.stderr.trim()).toBe(
        `rejected [SchemaViolation]: plugin 'alpha' breaks the plugin format: plugin.json: version: expected a semantic version like 1.2.3, got "0.1"`,
      )
    }
  })

  it("several problems: one line each, no Effect internals", async () => {
    const dir = workspace()
    writeFileSync(
      join(dir, "plugins/alpha/plugin.json"),
      manifest("alpha", { version: 2, entry: "../x.ts", permissions: { network: "yes" }, colour: "red" }),
    )
    const run = await plinth(dir, ["plugins", "lock"])
    expect(run.code).toBe(4)
    expectHuman(run.stderr)
    expect(run.stderr.trim().split("\n")).toEqual([
      "rejected [SchemaViolation]: plugin 'alpha' breaks the plugin format:",
      "  plugin.json: colour: not allowed here; the keys allowed are id, version, description, entry, actions, config, permissions, resources, secrets",
      "  plugin.json: version: expected a semantic version like 1.2.3, got 2",
      `  plugin.json: entry: expected a relative path to a .js or .mjs file inside the plugin folder, got "../x.ts" (the path leaves the plugin folder ('..'))`,
      `  plugin.json: permissions.network: expected true or false, got "yes"`,
    ])
    const machine = await plinth(dir, ["plugins", "lock", "--json"])
    expectHuman(machine.stdout.replaceAll("\\n", "\n"))
  })

  it("a JSON syntax error names the line and column", async () => {
    const dir = workspace()
    writeFileSync(join(dir, "plugins/beta/plugin.json"), '{\n  "id": "beta",\n  "version": "1.2.3",\n}\n')
    const run = await plinth(dir, ["plugins", "lock"])
    expect(run.code).toBe(4)
    expect(run.stderr).toContain("plugin.json: not valid JSON: line 4, column 1: expected a property name in double quotes")
    expectHuman(run.stderr)
  })

  it("a malformed lock: one line per problem, with the path inside the lock", async () => {
    const dir = workspace()
    writeFileSync(join(dir, "PLUGINS.lock"), JSON.stringify({ lockVersion: 1, plugins: { alpha: { digest: "sha256:abc", files: {} } } }))
    const run = await plinth(dir, ["plugins", "verify"])
    expect(run.code).toBe(4)
    expect(run.stderr.trim()).toBe(
      `rejected [LockFileMalformed]: the lock file PLUGINS.lock is malformed: plugins.alpha.digest: expected a tree digest like h1:<base64 of a SHA-256>, got "sha256:abc"`,
    )
  })
})
