import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { buildCli, examplesWorkspace, plinth, type Run } from "./support/cli.js"

/*
 * The operation commands (invoke, describe, trace) end to end: the built
 * binary, real worker processes, a copy of the example plugins and their lock.
 */

/** `invoke --json` prints JSON Lines; every line is one object. */
const jsonLines = (run: Run) =>
  run.stdout
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as Record<string, any>)

const invoke = (dir: string, action: string, input: unknown, ...rest: Array<string>) =>
  plinth(dir, ["plugins", "invoke", "showcase", action, "--input", JSON.stringify(input), ...rest])

/** For tests that run the CLI many times in a row: a guard against a hang, not a speed requirement. */
const SEQUENCE_TIMEOUT = 90_000

// The binary under test is the compiled one; an incremental build is a no-op when it is current.
beforeAll(() => {
  buildCli()
})

/** A fresh folder holding a copy of the example plugins and the lock that pins them. */
const workspace = () => examplesWorkspace("plinth-ops-")

describe.concurrent("plinth plugins invoke", () => {
  it("calls an action and prints its result; --json prints one outcome object; --config changes the plugin", async () => {
    const dir = workspace()
    const human = await invoke(dir, "greet", { name: "Ada" })
    expect(human.code, human.stderr).toBe(0)
    expect(human.stdout).toContain('"text": "Hello, Ada!"')
    expect(human.stderr).toContain("ok: showcase.greet")

    const machine = await invoke(dir, "greet", { name: "Ada" }, "--config", '{"greeting": "Hi"}', "--json")
    expect(machine.code, machine.stderr).toBe(0)
    expect(jsonLines(machine)).toEqual([{ ok: true, plugin: "showcase", action: "greet", result: { text: "Hi, Ada!" } }])
  })

  it("a streaming action prints every item, one per line, with progress on stderr; --json adds the outcome line", async () => {
    const dir = workspace()
    const human = await invoke(dir, "count", { to: 5 })
    expect(human.code, human.stderr).toBe(0)
    expect(human.stdout.trim().split("\n")).toEqual([1, 2, 3, 4, 5].map((n) => `{"n":${n}}`))
    expect(human.stderr).toContain("progress 100%")
    expect(human.stderr).toContain("5 items")

    const machine = await invoke(dir, "count", { to: 3 }, "--json")
    expect(machine.code, machine.stderr).toBe(0)
    expect(jsonLines(machine)).toEqual([
      { item: { n: 1 } },
      { item: { n: 2 } },
      { item: { n: 3 } },
      { ok: true, plugin: "showcase", action: "count", items: 3 },
    ])
    expect(machine.stderr).not.toContain("progress")
  })

  it("--input or --config that is not JSON exits 5 before anything is verified or started", async () => {
    const dir = workspace()
    // The lock does not exist: had verification started, this would be a rejection (exit 4).
    const missingLock = ["--lock", join(dir, "no-such.lock")]
    const human = await plinth(dir, ["plugins", "invoke", "showcase", "greet", "--input", '{"name": ', ...missingLock])
    expect(human.code).toBe(5)
    expect(human.stderr).toContain("--input is not valid JSON")
    expect(human.stderr).toContain("nothing was started")

    const machine = await plinth(dir, ["plugins", "invoke", "showcase", "greet", "--input", "{}", "--config", "{greeting: Hi}", "--json", ...missingLock])
    expect(machine.code).toBe(5)
    expect(jsonLines(machine)).toEqual([
      { ok: false, error: { _tag: "InvalidJsonOption", option: "--config", detail: expect.any(String), message: expect.stringContaining("--config is not valid JSON") } },
    ])
  })

  it("input the action's schema refuses exits 5 naming the field, and the action never runs", async () => {
    const dir = workspace()
    const run = await invoke(dir, "count", { to: 20000 }, "--json")
    expect(run.code).toBe(5)
    // Had `count` run, its items would come first.
    const lines = jsonLines(run)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatchObject({
      ok: false,
      error: { _tag: "PluginInputError" },
      job: { category: "input", retriable: false, plugin: "showcase", fieldsInvalid: ["to"] },
    })
  })

  it("an action the plugin does not have exits 5", async () => {
    const dir = workspace()
    const run = await invoke(dir, "nope", {})
    expect(run.code).toBe(5)
    expect(run.stderr).toContain("'showcase' has no action 'nope'")
    expect(run.stderr).toContain("category: input, not retriable")
  })

  const categories = [
    ["input", 5, "PluginInputError", false, { fieldsInvalid: ["name"] }],
    ["transient", 6, "PluginTransientError", true, { retryAfterSeconds: 5 }],
    ["resource", 7, "PluginResourceError", true, { shortfall: { resource: "memory_mb", needed: 4096, available: 512 } }],
    ["fatal", 8, "PluginFatalError", false, {}],
    ["defect", 8, "PluginFatalError", false, {}],
  ] as const
  for (const [category, code, tag, retriable, fields] of categories) {
    it(`fail {category: ${category}} exits ${code} with the error's category and fields`, async () => {
      const dir = workspace()
      const run = await invoke(dir, "fail", { category }, "--json")
      expect(run.code, run.stderr).toBe(code)
      const [outcome] = jsonLines(run)
      expect(outcome).toMatchObject({
        ok: false,
        error: { _tag: tag, ...fields },
        job: { category: category === "defect" ? "fatal" : category, tag, retriable, plugin: "showcase", ...fields },
      })
      expect(outcome!.job.instance).toMatch(/^showcase#/)
    })
  }

  it("a failure for people names its category, whether to retry, and its fields", async () => {
    const dir = workspace()
    const run = await invoke(dir, "fail", { category: "transient" })
    expect(run.code).toBe(6)
    expect(run.stdout).toBe("")
    expect(run.stderr).toContain("[PluginTransientError]: the service is busy")
    expect(run.stderr).toContain("category: transient, retriable")
    expect(run.stderr).toContain("retry after: 5 s")
  })

  it("a call that outlives --timeout exits 6 with a timeout message", async () => {
    const dir = workspace()
    // Ten minutes of work: only the timeout lets this test finish.
    const run = await invoke(dir, "slow", { millis: 600000 }, "--timeout", "300ms")
    expect(run.code).toBe(6)
    expect(run.stderr).toContain("[InvokeTimeout]: timed out: showcase.slow did not finish within 300 ms")
    expect(run.stderr).toContain("category: transient, retriable")
  })

  it("reading a file outside the plugin's folder is denied by the sandbox: exit 8, and the content never shows", async () => {
    const dir = workspace()
    const secret = join(dir, "secret.txt")
    writeFileSync(secret, "the secret content")
    const human = await invoke(dir, "probe", { attempt: "read-outside", target: secret })
    expect(human.code).toBe(8)
    expect(human.stderr).toContain(`the sandbox denied fs-read access to ${secret}`)
    expect(human.stdout + human.stderr).not.toContain("characters")

    const machine = await invoke(dir, "probe", { attempt: "spawn", target: "ls" }, "--json")
    expect(machine.code).toBe(8)
    expect(jsonLines(machine)[0]).toMatchObject({ error: { _tag: "SandboxDenied", permission: "child-process" }, job: { category: "fatal" } })
  })

  it("an id that is not a plugin under the root is a usage error (exit 2) naming the plugins there are", async () => {
    const dir = workspace()
    const human = await plinth(dir, ["plugins", "invoke", "nope", "greet", "--input", "{}"])
    expect(human.code).toBe(2)
    expect(human.stderr).toContain("no plugin 'nope' under the plugin root (found: case-tools, greeter, showcase, text-tools, vault-demo, word-count)")
    const machine = await plinth(dir, ["plugins", "invoke", "nope", "greet", "--input", "{}", "--json"])
    expect(machine.code).toBe(2)
    expect(jsonLines(machine)[0]).toMatchObject({ ok: false, error: { _tag: "PluginNotFound", plugin: "nope" } })
  })

  it("a --timeout without a unit is a usage error that says what it expects", async () => {
    const run = await plinth(workspace(), ["plugins", "invoke", "showcase", "greet", "--input", "{}", "--timeout", "5"])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain("500ms, 5s, 2m")
  })
})

describe.concurrent("plinth plugins trace", () => {
  it("lists the calls just made, oldest first, with outcome, category and items; --limit keeps the latest", async () => {
    const dir = workspace()
    const file = join(dir, "calls.jsonl")
    expect((await invoke(dir, "greet", { name: "Ada" }, "--trace", file)).code).toBe(0)
    expect((await invoke(dir, "fail", { category: "transient" }, "--trace", file)).code).toBe(6)
    expect((await invoke(dir, "count", { to: 3 }, "--trace", file)).code).toBe(0)

    const human = await plinth(dir, ["plugins", "trace", "--trace", file])
    expect(human.code, human.stderr).toBe(0)
    const rows = human.stdout.trim().split("\n")
    expect(rows[0]).toMatch(/^time\s+plugin\s+instance\s+action\s+duration\s+outcome\s+detail$/)
    expect(rows[1]).toMatch(/^\d{4}-\d\d-\d\dT\S+Z\s+showcase\s+showcase#\d+\s+greet\s+\d+ ms\s+ok$/)
    expect(rows[2]).toMatch(/fail\s+\d+ ms\s+failed\s+transient: the service is busy$/)
    expect(rows[3]).toMatch(/count\s+\d+ ms\s+ok\s+3 items$/)
    expect(rows[4]).toContain("3 calls")

    const machine = await plinth(dir, ["plugins", "trace", "--trace", file, "--limit", "2", "--json"])
    expect(machine.code).toBe(0)
    const report = JSON.parse(machine.stdout)
    expect(report.calls.map((c: { action: string; outcome: string }) => [c.action, c.outcome])).toEqual([
      ["fail", "failed"],
      ["count", "ok"],
    ])
    expect(report.calls[0]).toMatchObject({ plugin: "showcase", category: "transient", message: "the service is busy" })
  }, SEQUENCE_TIMEOUT)

  it("records in .plinth/trace.jsonl by default; PLINTH_TRACE overrides it and --trace beats both; an empty trace says so", async () => {
    const dir = workspace()
    expect((await invoke(dir, "greet", { name: "Ada" })).code).toBe(0)
    expect(existsSync(join(dir, ".plinth/trace.jsonl"))).toBe(true)
    expect((await invoke(dir, "greet", { name: "Bob" }, "--json").then((r) => r.code))).toBe(0)
    expect((await plinth(dir, ["plugins", "invoke", "showcase", "fail", "--input", '{"category":"fatal"}'], { PLINTH_TRACE: "other.jsonl" })).code).toBe(8)

    const byDefault = await plinth(dir, ["plugins", "trace", "--json"])
    expect(JSON.parse(byDefault.stdout).calls.map((c: { action: string }) => c.action)).toEqual(["greet", "greet"])
    const byEnv = await plinth(dir, ["plugins", "trace", "--json"], { PLINTH_TRACE: "other.jsonl" })
    expect(JSON.parse(byEnv.stdout).calls.map((c: { action: string }) => c.action)).toEqual(["fail"])
    const byFlag = await plinth(dir, ["plugins", "trace", "--trace", "empty.jsonl"], { PLINTH_TRACE: "other.jsonl" })
    expect(byFlag.code).toBe(0)
    expect(byFlag.stdout.trim()).toBe("no calls recorded in empty.jsonl")
  }, SEQUENCE_TIMEOUT)
})

describe.concurrent("plinth plugins describe", () => {
  it("prints the live declaration: actions with their schemas and the config schema", async () => {
    const dir = workspace()
    const human = await plinth(dir, ["plugins", "describe", "showcase"])
    expect(human.code, human.stderr).toBe(0)
    expect(human.stdout).toMatch(/count \(streaming\): Streams the numbers/)
    expect(human.stdout).toMatch(/greet: Greets someone[\s\S]*input:[\s\S]*"name"[\s\S]*output:[\s\S]*"text"/)
    expect(human.stdout).toMatch(/config:[\s\S]*"greeting"/)
    expect(human.stdout).toContain("already carries this declaration")

    const machine = await plinth(dir, ["plugins", "describe", "showcase", "--json"])
    const report = JSON.parse(machine.stdout)
    const manifest = JSON.parse(readFileSync(join(dir, "plugins/showcase/plugin.json"), "utf-8"))
    expect(report).toMatchObject({ ok: true, plugin: "showcase", upToDate: true, written: false })
    expect(report.declaration).toEqual({ actions: manifest.actions, config: manifest.config })
  })

  it("says in its help that it runs plugin code", async () => {
    const help = await plinth(tmpdir(), ["plugins", "describe", "--help"])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain("RUNS PLUGIN CODE")
  })

  it("--write stores the declaration in plugin.json; verify then exits 4 until the plugins are locked again", async () => {
    const dir = workspace()
    const manifestFile = join(dir, "plugins/showcase/plugin.json")
    const original = JSON.parse(readFileSync(manifestFile, "utf-8"))
    const { actions: _actions, config: _config, ...bare } = original
    writeFileSync(manifestFile, JSON.stringify(bare, null, 2))
    expect((await plinth(dir, ["plugins", "lock"])).code).toBe(0)
    // The manifest no longer matches the code, so the plugin is refused at start.
    const drifted = await invoke(dir, "greet", { name: "Ada" })
    expect(drifted.code).toBe(8)
    expect(drifted.stderr).toContain("[DeclarationDrift]")

    const written = await plinth(dir, ["plugins", "describe", "showcase", "--write"])
    expect(written.code, written.stderr).toBe(0)
    expect(written.stdout).toContain("review the change, then run 'plinth plugins lock'")
    const rewritten = JSON.parse(readFileSync(manifestFile, "utf-8"))
    expect(rewritten.actions).toEqual(original.actions)
    expect(rewritten.config).toEqual(original.config)
    expect(rewritten.permissions).toEqual(original.permissions)

    const refused = await plinth(dir, ["plugins", "verify"])
    expect(refused.code).toBe(4)
    expect(refused.stderr).toContain("changed: plugin.json")
    expect((await plinth(dir, ["plugins", "lock"])).code).toBe(0)
    expect((await plinth(dir, ["plugins", "verify"])).code).toBe(0)
    expect((await invoke(dir, "greet", { name: "Ada" })).code).toBe(0)
  }, SEQUENCE_TIMEOUT)

  it("an id that is not a plugin under the root exits 2", async () => {
    const run = await plinth(workspace(), ["plugins", "describe", "nope"])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain("no plugin 'nope'")
  })
})
