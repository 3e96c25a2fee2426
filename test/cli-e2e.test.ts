import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { buildCli, plinth, repo, type Run } from "./support/cli.js"
import { manifestText, writeFiles } from "./support/plugins.js"

const json = (run: Run) => JSON.parse(run.stdout) as Record<string, any>

const manifest = manifestText

/** A plugin whose module body leaves `witness.txt` in the workspace: if it ever runs, the file appears. */
const witnessPlugin = {
  "plugin.json": manifest("witness", {
    actions: {
      shout: {
        description: "Upper-cases its input.",
        input: { type: "object", properties: { text: { type: "string" } }, required: ["text"] },
        output: { type: "string" },
      },
    },
    config: { type: "object", properties: { volume: { type: "number" } } },
  }),
  "index.js": [
    'import { writeFileSync } from "node:fs"',
    'writeFileSync(new URL("../../witness.txt", import.meta.url), "ran")',
    "export default {}",
  ].join("\n"),
}

/** A workspace with `plugins/` (three plugins, one nested) and no lock yet. */
const workspace = () => {
  const dir = mkdtempSync(join(tmpdir(), "plinth-cli-"))
  writeFiles(join(dir, "plugins/alpha"), {
    "plugin.json": manifest("alpha"),
    "index.js": 'export { shout } from "./lib/util.js"\n',
    "lib/util.js": "export const shout = (s) => s.toUpperCase()\n",
  })
  writeFiles(join(dir, "plugins/beta"), { "plugin.json": manifest("beta"), "index.js": "export default 1\n" })
  writeFiles(join(dir, "plugins/witness"), witnessPlugin)
  return dir
}

let lockedTemplate = ""

// The binary under test is the compiled one; an incremental build is a no-op when it is current.
// One workspace is locked through the CLI; each test works on its own copy.
beforeAll(async () => {
  buildCli()
  lockedTemplate = workspace()
  const locked = await plinth(lockedTemplate, ["plugins", "lock"])
  expect(locked.code, locked.stderr).toBe(0)
})

/** A workspace whose lock pins its plugins as they are. */
const lockedWorkspace = async () => {
  const dir = mkdtempSync(join(tmpdir(), "plinth-cli-"))
  cpSync(lockedTemplate, dir, { recursive: true, verbatimSymlinks: true })
  return dir
}

const witnessRan = (dir: string) => existsSync(join(dir, "witness.txt"))

describe.concurrent("plinth plugins verify", () => {
  it("exits 0 with one line per plugin naming id, version and digest", async () => {
    const dir = await lockedWorkspace()
    const run = await plinth(dir, ["plugins", "verify"])
    expect(run.code, run.stderr).toBe(0)
    const lines = run.stdout.trim().split("\n")
    for (const id of ["alpha", "beta", "witness"]) {
      expect(lines.some((line) => line.includes(id) && line.includes("1.2.3") && /h1:[A-Za-z0-9+/]{43}=/.test(line))).toBe(true)
    }
    expect(witnessRan(dir)).toBe(false)
  })

  it("--json prints one object listing the verified plugins", async () => {
    const dir = await lockedWorkspace()
    const run = await plinth(dir, ["plugins", "verify", "--json"])
    expect(run.code).toBe(0)
    const report = json(run)
    expect(report.ok).toBe(true)
    expect(report.plugins.map((p: { id: string }) => p.id)).toEqual(["alpha", "beta", "witness"])
  })

  it("exits 4 on one changed byte, naming the plugin, the rule and the changed file", async () => {
    const dir = await lockedWorkspace()
    const file = join(dir, "plugins/alpha/lib/util.js")
    writeFileSync(file, readFileSync(file, "utf-8").replace("toUpperCase", "toLowerCase"))
    const human = await plinth(dir, ["plugins", "verify"])
    expect(human.code).toBe(4)
    expect(human.stderr).toContain("IntegrityMismatch")
    expect(human.stderr).toContain("'alpha'")
    expect(human.stderr).toContain("changed: lib/util.js")

    const machine = await plinth(dir, ["plugins", "verify", "--json"])
    expect(machine.code).toBe(4)
    const { rejection } = json(machine)
    expect(rejection).toMatchObject({ _tag: "IntegrityMismatch", plugin: "alpha", added: [], removed: [], changed: ["lib/util.js"] })
    expect(rejection.expected).not.toEqual(rejection.actual)
    expect(witnessRan(dir)).toBe(false)
  })

  it("exits 4 for a plugin folder the lock does not pin", async () => {
    const dir = await lockedWorkspace()
    writeFiles(join(dir, "plugins/gamma"), { "plugin.json": manifest("gamma"), "index.js": "export default 1\n" })
    const run = await plinth(dir, ["plugins", "verify", "--json"])
    expect(run.code).toBe(4)
    expect(json(run).error).toEqual({ _tag: "UnlockedPlugin", plugin: "gamma", lock: "PLUGINS.lock", message: expect.any(String) })
  })

  it("exits 4 when a locked plugin's folder is missing", async () => {
    const dir = await lockedWorkspace()
    rmSync(join(dir, "plugins/beta"), { recursive: true })
    const run = await plinth(dir, ["plugins", "verify", "--json"])
    expect(run.code).toBe(4)
    expect(json(run).error).toEqual({ _tag: "MissingPluginDirectory", plugin: "beta", lock: "PLUGINS.lock", message: expect.any(String) })
  })

  it("exits 4 on a malformed lock, naming the lock file", async () => {
    const dir = workspace()
    writeFileSync(join(dir, "PLUGINS.lock"), '{"lockVersion": 1, "plugins": ')
    const run = await plinth(dir, ["plugins", "verify", "--json"])
    expect(run.code).toBe(4)
    expect(json(run).rejection).toMatchObject({ _tag: "LockFileMalformed", path: "PLUGINS.lock" })
    const human = await plinth(dir, ["plugins", "verify"])
    expect(human.stderr).toContain("LockFileMalformed")
    expect(human.stderr).not.toMatch(/\n\s+at /)
  })

  it("exits 4 on a symlink that leaves the plugin folder", async () => {
    const dir = await lockedWorkspace()
    writeFileSync(join(dir, "secret.txt"), "outside")
    symlinkSync(join(dir, "secret.txt"), join(dir, "plugins/alpha/lib/secret.js"))
    const run = await plinth(dir, ["plugins", "verify", "--json"])
    expect(run.code).toBe(4)
    expect(json(run).error).toEqual({ ...{ _tag: "SymlinkEscape", plugin: "alpha", offendingPath: "lib/secret.js" }, message: expect.any(String) })
  })

  it("takes --root and --lock from anywhere", async () => {
    const dir = await lockedWorkspace()
    const run = await plinth(tmpdir(), ["plugins", "verify", "--root", join(dir, "plugins"), "--lock", join(dir, "PLUGINS.lock")])
    expect(run.code, run.stderr).toBe(0)
  })
})

describe.concurrent("plinth plugins lock", () => {
  it("writes the lock, then --check finds it up to date", async () => {
    const dir = workspace()
    const first = await plinth(dir, ["plugins", "lock"])
    expect(first.code).toBe(0)
    expect(first.stdout).toMatch(/\+ alpha/)
    expect(JSON.parse(readFileSync(join(dir, "PLUGINS.lock"), "utf-8")).plugins).toHaveProperty("witness")
    const check = await plinth(dir, ["plugins", "lock", "--check"])
    expect(check.code).toBe(0)
    expect(check.stdout).toContain("up to date")
    expect(witnessRan(dir)).toBe(false)
  })

  it("--check after a change exits 3, reports what changed, and writes nothing", async () => {
    const dir = await lockedWorkspace()
    const before = readFileSync(join(dir, "PLUGINS.lock"))
    writeFileSync(join(dir, "plugins/beta/index.js"), "export default 2\n")
    rmSync(join(dir, "plugins/alpha"), { recursive: true })
    const check = await plinth(dir, ["plugins", "lock", "--check"])
    expect(check.code).toBe(3)
    expect(check.stdout).toMatch(/- alpha/)
    expect(check.stdout).toMatch(/~ beta/)
    expect(check.stderr).toContain("plinth plugins lock")
    expect(readFileSync(join(dir, "PLUGINS.lock"))).toEqual(before)

    const machine = await plinth(dir, ["plugins", "lock", "--check", "--json"])
    expect(machine.code).toBe(3)
    expect(json(machine)).toEqual({
      ok: false,
      error: { _tag: "LockOutOfDate", lock: "PLUGINS.lock", changes: { added: [], removed: ["alpha"], changed: ["beta"] }, message: expect.any(String) },
    })
  })

  it("re-locks after review so that verify passes again", async () => {
    const dir = await lockedWorkspace()
    writeFileSync(join(dir, "plugins/beta/index.js"), "export default 2\n")
    const relock = await plinth(dir, ["plugins", "lock"])
    expect(relock.code).toBe(0)
    expect(relock.stdout).toMatch(/~ beta/)
    expect((await plinth(dir, ["plugins", "verify"])).code).toBe(0)
  })
})

describe.concurrent("plinth plugins list and show", () => {
  it("list shows every plugin with its lock status and never runs plugin code", async () => {
    const dir = await lockedWorkspace()
    writeFiles(join(dir, "plugins/gamma"), { "plugin.json": manifest("gamma"), "index.js": "export default 1\n" })
    const human = await plinth(dir, ["plugins", "list"])
    expect(human.code).toBe(0)
    expect(human.stdout).toMatch(/alpha\s+1\.2\.3\s+locked/)
    expect(human.stdout).toMatch(/gamma\s+1\.2\.3\s+unlocked/)
    const machine = json(await plinth(dir, ["plugins", "list", "--json"]))
    expect(machine.plugins.map((p: { id: string; lock: { locked: boolean } }) => [p.id, p.lock.locked])).toEqual([
      ["alpha", true],
      ["beta", true],
      ["gamma", false],
      ["witness", true],
    ])
    expect(witnessRan(dir)).toBe(false)
  })

  it("show prints the manifest, the actions with their schemas, the config schema and the lock status, running no plugin code", async () => {
    const dir = await lockedWorkspace()
    const human = await plinth(dir, ["plugins", "show", "witness"])
    expect(human.code, human.stderr).toBe(0)
    expect(human.stdout).toContain("witness 1.2.3")
    expect(human.stdout).toContain("shout: Upper-cases its input.")
    expect(human.stdout).toMatch(/input:[\s\S]*"required"[\s\S]*output:[\s\S]*"string"/)
    expect(human.stdout).toMatch(/config:[\s\S]*"volume"/)
    expect(human.stdout).toMatch(/lock:\s+locked h1:/)

    const machine = json(await plinth(dir, ["plugins", "show", "witness", "--json"]))
    expect(machine.plugin.manifest.actions.shout.input.required).toEqual(["text"])
    expect(machine.plugin.lock.locked).toBe(true)
    expect(witnessRan(dir)).toBe(false)
  })

  it("show of an unknown plugin is a usage error (exit 2) naming it and the plugins there are", async () => {
    const dir = await lockedWorkspace()
    const run = await plinth(dir, ["plugins", "show", "nope", "--json"])
    expect(run.code).toBe(2)
    expect(json(run).error).toEqual({ _tag: "PluginNotFound", plugin: "nope", known: ["alpha", "beta", "witness"], message: expect.stringContaining("no plugin 'nope'") })
    const human = await plinth(dir, ["plugins", "show", "nope"])
    expect(human.code).toBe(2)
    expect(human.stderr).toContain("no plugin 'nope'")
  })
})

describe.concurrent("usage errors and output", () => {
  const cases: ReadonlyArray<[string, ReadonlyArray<string>, string]> = [
    ["an unknown flag", ["plugins", "verify", "--frobnicate"], "--frobnicate"],
    ["a missing argument", ["plugins", "show"], "<id>"],
    ["an unknown subcommand", ["plugins", "frob"], "'frob'"],
    ["a command group alone", ["plugins"], "verify, lock, list, show"],
    ["a flag without its value", ["plugins", "verify", "--root"], "--root"],
  ]
  for (const [what, args, mention] of cases) {
    it(`${what} exits 2 with a message and no stack trace`, async () => {
      const run = await plinth(tmpdir(), args)
      expect(run.code).toBe(2)
      expect(run.stdout).toBe("")
      expect(run.stderr).toContain("usage error")
      expect(run.stderr).toContain(mention)
      expect(run.stderr).not.toMatch(/\n\s+at /)
    })
  }

  it("prints no escape characters when NO_COLOR is set or output is not a terminal", async () => {
    const dir = await lockedWorkspace()
    writeFileSync(join(dir, "plugins/beta/index.js"), "export default 2\n")
    const runs = await Promise.all([
      plinth(dir, ["plugins", "verify", "--help"], { NO_COLOR: "1" }),
      plinth(dir, ["plugins", "verify"], { NO_COLOR: "1" }),
      plinth(dir, ["plugins", "frob"], { NO_COLOR: "1" }),
      plinth(dir, ["--help"]),
      plinth(dir, ["plugins", "list"]),
      plinth(dir, ["plugins", "lock", "--check"]),
    ])
    for (const run of runs) {
      expect(run.stdout + run.stderr).not.toContain("\u001b")
      expect((run.stdout + run.stderr).length).toBeGreaterThan(0)
    }
  })
})
