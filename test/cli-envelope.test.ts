import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { buildCli, examplesWorkspace, plinth, type Run } from "./support/cli.js"

/*
 * One JSON shape for every command under --json (ADR 0019), asserted on real
 * processes: success `{"ok": true, …}`, failure `{"ok": false, "error":
 * {"_tag", …fields, "message"}}`, each object compact on one line; usage
 * errors too. Only a streaming invoke prints more than one line.
 */

beforeAll(() => {
  buildCli()
})

/** A copy of the example plugins and their lock, with `prepare` applied to it. */
const workspace = (prepare: (dir: string) => void = () => {}) => {
  const dir = examplesWorkspace("plinth-envelope-")
  prepare(dir)
  return dir
}

const mkdirWrite = (path: string, content: string) => {
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, content)
}

const tamper = (dir: string) => writeFileSync(join(dir, "plugins/greeter/index.js"), "export default {}\n")

/** The one line of stdout, as JSON; fails unless stdout is exactly one line. */
const onlyLine = (run: Run): Record<string, any> => {
  expect(run.stdout.endsWith("\n"), run.stdout).toBe(true)
  const lines = run.stdout.slice(0, -1).split("\n")
  expect(lines, run.stdout).toHaveLength(1)
  return JSON.parse(lines[0]!)
}

const expectFailure = (object: Record<string, any>, tag: string, besides: ReadonlyArray<string> = []) => {
  expect(object.ok).toBe(false)
  expect(object.error._tag).toBe(tag)
  expect(typeof object.error.message).toBe("string")
  expect(object.error.message).not.toBe("")
  expect(object.error.message).not.toContain("\n")
  // No failure shapes other than the envelope's (`job` and the deprecated `rejection` may sit beside it).
  expect(Object.keys(object).filter((key) => !["ok", "error", "job", "rejection", ...besides].includes(key))).toEqual([])
}

interface Case {
  readonly command: string
  readonly success: { readonly args: ReadonlyArray<string>; readonly fields: ReadonlyArray<string> }
  readonly failure: {
    readonly args: ReadonlyArray<string>
    readonly prepare?: (dir: string) => void
    readonly code: number
    readonly tag: string
    /** Fields a failure carries beside `error` (the report is its own envelope: the evidence sits beside the error). */
    readonly besides?: ReadonlyArray<string>
  }
}

// Every command of `plinth plugins`, with a call that succeeds and one that fails.
const cases: ReadonlyArray<Case> = [
  {
    command: "verify",
    success: { args: [], fields: ["plugins"] },
    failure: { args: [], prepare: tamper, code: 4, tag: "IntegrityMismatch" },
  },
  {
    command: "lock",
    success: { args: ["--check"], fields: ["upToDate", "written", "changes"] },
    failure: { args: ["--check"], prepare: tamper, code: 3, tag: "LockOutOfDate" },
  },
  {
    command: "list",
    success: { args: [], fields: ["plugins"] },
    failure: { args: [], prepare: (dir) => writeFileSync(join(dir, "PLUGINS.lock"), "{"), code: 4, tag: "LockFileMalformed" },
  },
  {
    command: "show",
    success: { args: ["greeter"], fields: ["plugin"] },
    failure: { args: ["nope"], code: 2, tag: "PluginNotFound" },
  },
  {
    command: "invoke",
    success: { args: ["greeter", "greet", "--input", '{"name": "Ada"}'], fields: ["plugin", "action", "result"] },
    failure: { args: ["showcase", "fail", "--input", '{"category": "transient"}'], code: 6, tag: "PluginTransientError" },
  },
  {
    command: "describe",
    success: { args: ["greeter"], fields: ["plugin", "upToDate", "written", "declaration"] },
    failure: { args: ["nope"], code: 2, tag: "PluginNotFound" },
  },
  {
    command: "report",
    success: { args: ["--out", "review"], fields: ["reportVersion", "summary", "plugins", "environment"] },
    failure: {
      args: ["--out", "review"],
      prepare: tamper,
      code: 4,
      tag: "PluginsRejected",
      besides: ["reportVersion", "generatedAt", "root", "lock", "environment", "summary", "plugins"],
    },
  },
  {
    command: "enable",
    success: { args: ["greeter"], fields: ["plugin", "enabled", "changed"] },
    failure: { args: ["nope"], code: 2, tag: "PluginNotFound" },
  },
  {
    command: "disable",
    success: { args: ["greeter"], fields: ["plugin", "enabled", "changed"] },
    failure: { args: ["greeter"], prepare: tamper, code: 4, tag: "IntegrityMismatch" },
  },
  {
    command: "config",
    success: { args: ["greeter", "--set", '{"greeting": "Hi"}'], fields: ["plugin", "config", "enabled", "stored", "updated"] },
    failure: { args: ["greeter", "--set", '{"greeting": "Hi", "nope": 1}'], code: 5, tag: "ConfigInvalid" },
  },
  {
    command: "stats",
    success: { args: [], fields: ["records"] },
    // A database file that is not one.
    failure: { args: [], prepare: (dir) => mkdirWrite(join(dir, ".plinth/plinth.db"), "not a database\n".repeat(100)), code: 1, tag: "StoreUnavailable" },
  },
  {
    command: "trace",
    success: { args: [], fields: ["file", "calls", "skipped"] },
    // A folder where the trace file should be.
    failure: { args: ["--trace", "plugins"], code: 1, tag: "TraceUnavailable" },
  },
]

describe.concurrent("the --json envelope of every command", () => {
  it("covers every command of 'plinth plugins'", async () => {
    const help = await plinth(tmpdir(), ["plugins", "--help"])
    const listed = [...help.stdout.matchAll(/^ {2}plinth plugins (\S+)/gm)].map((m) => m[1])
    expect(listed.sort()).toEqual(cases.map((c) => c.command).sort())
  })

  for (const { command, success, failure } of cases) {
    it(`${command}: success is {"ok": true, …} on one line`, async () => {
      const run = await plinth(workspace(), ["plugins", command, ...success.args, "--json"])
      expect(run.code, run.stderr).toBe(0)
      const object = onlyLine(run)
      expect(object.ok).toBe(true)
      for (const field of success.fields) expect(object).toHaveProperty(field)
    })

    it(`${command}: failure is {"ok": false, "error": {"_tag": "${failure.tag}", …}} on one line, exit ${failure.code}`, async () => {
      const run = await plinth(workspace(failure.prepare), ["plugins", command, ...failure.args, "--json"])
      expect(run.code, run.stderr).toBe(failure.code)
      expectFailure(onlyLine(run), failure.tag, failure.besides)
    })

    it(`${command}: a usage error under --json is a UsageError object on stdout, exit 2`, async () => {
      const run = await plinth(workspace(), ["plugins", command, "--json", "--frobnicate"])
      expect(run.code).toBe(2)
      const object = onlyLine(run)
      expectFailure(object, "UsageError")
      expect(object.error.command).toBe(`plinth plugins ${command}`)
      expect(object.error.message).toContain("--frobnicate")
    })
  }

  it("a rejection keeps the deprecated `rejection` alias, equal to `error`", async () => {
    const run = await plinth(workspace(tamper), ["plugins", "verify", "--json"])
    const object = onlyLine(run)
    expect(object.rejection).toEqual(object.error)
    expect(object.error).toMatchObject({ plugin: "greeter", changed: ["index.js"] })
  })

  it("a failed plugin call carries its job summary beside the error", async () => {
    const run = await plinth(workspace(), ["plugins", "invoke", "showcase", "fail", "--input", '{"category": "transient"}', "--json"])
    expect(onlyLine(run).job).toMatchObject({ category: "transient", retriable: true, plugin: "showcase" })
  })

  it("describe --check: up to date is {\"ok\": true, …}; a stale manifest is a ManifestsStale error with the differences, exit 3", async () => {
    const fresh = await plinth(workspace(), ["plugins", "describe", "--check", "--json"])
    expect(fresh.code, fresh.stderr).toBe(0)
    expect(onlyLine(fresh)).toMatchObject({ ok: true, upToDate: true })

    const stale = workspace((dir) => {
      const manifest = join(dir, "plugins/greeter/plugin.json")
      const parsed = JSON.parse(readFileSync(manifest, "utf8"))
      parsed.actions.greet.description = "Says something else."
      writeFileSync(manifest, JSON.stringify(parsed, null, 2))
    })
    expect((await plinth(stale, ["plugins", "lock"])).code).toBe(0)
    const run = await plinth(stale, ["plugins", "describe", "--check", "--json"])
    expect(run.code, run.stderr).toBe(3)
    const object = onlyLine(run)
    expectFailure(object, "ManifestsStale")
    expect(object.error).toMatchObject({ plugins: ["greeter"], differences: [{ id: "greeter", differences: [{ change: "description", action: "greet" }] }] })
  })

  it("a root that is not a folder is the same usage error whether it is missing or a file", async () => {
    const dir = workspace((d) => mkdirSync(join(d, "empty")))
    const missing = await plinth(dir, ["plugins", "verify", "--root", "nope", "--json"])
    const file = await plinth(dir, ["plugins", "verify", "--root", "PLUGINS.lock", "--json"])
    const fromEnv = await plinth(dir, ["plugins", "list", "--json"], { PLINTH_ROOT: "PLUGINS.lock" })
    for (const run of [missing, file, fromEnv]) {
      expect(run.code).toBe(2)
      expectFailure(onlyLine(run), "UsageError")
      expect(onlyLine(run).error.message).toMatch(/^--root '(nope|PLUGINS\.lock)' is not a folder/)
    }
  })

  it("a usage error found before any command is chosen is JSON too", async () => {
    const run = await plinth(tmpdir(), ["plugins", "frob", "--json"])
    expect(run.code).toBe(2)
    expectFailure(onlyLine(run), "UsageError")
  })

  it("a streaming invoke prints JSON Lines: one item per line, then the outcome", async () => {
    const run = await plinth(workspace(), ["plugins", "invoke", "showcase", "count", "--input", '{"to": 2}', "--json"])
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toBe('{"item":{"n":1}}\n{"item":{"n":2}}\n{"ok":true,"plugin":"showcase","action":"count","items":2}\n')
  })
})
