import { existsSync } from "node:fs"
import { join } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { Effect, Layer } from "effect"
import { configHash, DatabaseLive, EmpiricalStore, EmpiricalStoreLive } from "@plinth/runtime"
import { buildCli, examplesWorkspace, plinth, type Run } from "./support/cli.js"

/*
 * The persisted state of plugins from the command line (issue 8 §6): enable,
 * disable, config and stats over the database under --data-dir, and invoke
 * reading what they recorded. The built binary, real worker processes, real
 * SQLite files, a copy of the example plugins and their lock.
 */

beforeAll(() => {
  buildCli()
})

const workspace = () => examplesWorkspace("plinth-state-")
const lastJson = (run: Run) => JSON.parse(run.stdout.trim().split("\n").at(-1)!) as Record<string, any>
const greet = (dir: string, ...rest: Array<string>) => plinth(dir, ["plugins", "invoke", "greeter", "greet", "--input", '{"name": "Ada"}', "--json", ...rest])

/** For tests that run the CLI many times in a row: a guard against a hang, not a speed requirement. */
const SEQUENCE_TIMEOUT = 180_000
/** For tests that run the CLI a few times. */
const SHORT_TIMEOUT = 90_000

describe.concurrent("plinth plugins config", () => {
  it("shows the defaults when nothing is stored, stores a checked config, and invoke uses it unless --config overrides it", async () => {
    const dir = workspace()
    const before = await plinth(dir, ["plugins", "config", "greeter", "--json"])
    expect(before.code, before.stderr).toBe(0)
    expect(lastJson(before)).toEqual({ ok: true, plugin: "greeter", config: {}, enabled: true, stored: false, updated: false })
    expect(existsSync(join(dir, ".plinth")), "showing creates no database").toBe(false)

    const set = await plinth(dir, ["plugins", "config", "greeter", "--set", '{"greeting": "Ahoy"}'])
    expect(set.code, set.stderr).toBe(0)
    expect(set.stdout).toContain("stored the config of 'greeter'")
    expect(set.stdout).toContain('config:  {"greeting":"Ahoy"}')
    expect(existsSync(join(dir, ".plinth/plinth.db"))).toBe(true)

    const shown = await plinth(dir, ["plugins", "config", "greeter", "--json"])
    expect(lastJson(shown)).toMatchObject({ ok: true, config: { greeting: "Ahoy" }, enabled: true, stored: true })

    expect(lastJson(await greet(dir))).toMatchObject({ ok: true, result: "Ahoy, Ada!" })
    expect(lastJson(await greet(dir, "--config", '{"greeting": "Hi"}'))).toMatchObject({ ok: true, result: "Hi, Ada!" })
  }, SEQUENCE_TIMEOUT)

  it("strict refuses unknown keys with ConfigInvalid (exit 5) and keeps the stored config; --lenient drops them", async () => {
    const dir = workspace()
    expect((await plinth(dir, ["plugins", "config", "greeter", "--set", '{"greeting": "Yo"}'])).code).toBe(0)

    const strict = await plinth(dir, ["plugins", "config", "greeter", "--set", '{"greeting": "Hi", "shout": true}', "--json"])
    expect(strict.code).toBe(5)
    expect(lastJson(strict).error).toMatchObject({ _tag: "ConfigInvalid", plugin: "greeter", fieldsInvalid: ["shout"] })
    const human = await plinth(dir, ["plugins", "config", "greeter", "--set", '{"greeting": 7}'])
    expect(human.code).toBe(5)
    expect(human.stderr).toMatch(/^refused \[ConfigInvalid\]: the config for 'greeter' is refused: .*greeting/)
    expect(lastJson(await plinth(dir, ["plugins", "config", "greeter", "--json"])).config).toEqual({ greeting: "Yo" })

    const lenient = await plinth(dir, ["plugins", "config", "greeter", "--set", '{"greeting": "Hi", "shout": true}', "--lenient", "--json"])
    expect(lenient.code, lenient.stderr).toBe(0)
    expect(lastJson(lenient)).toMatchObject({ config: { greeting: "Hi" }, updated: true, dropped: ["shout"] })
  }, SEQUENCE_TIMEOUT)

  it("refuses --set that is not JSON (exit 5), --lenient alone (exit 2), and a plugin that is not under --root (exit 2)", async () => {
    const dir = workspace()
    const notJson = await plinth(dir, ["plugins", "config", "greeter", "--set", "{greeting", "--json"])
    expect(notJson.code).toBe(5)
    expect(lastJson(notJson).error).toMatchObject({ _tag: "InvalidJsonOption", option: "--set" })
    const alone = await plinth(dir, ["plugins", "config", "greeter", "--lenient"])
    expect(alone.code).toBe(2)
    expect(alone.stderr).toContain("--lenient applies to a config given with --set")
    const unknown = await plinth(dir, ["plugins", "config", "nope", "--set", "{}"])
    expect(unknown.code).toBe(2)
    expect(existsSync(join(dir, ".plinth/plinth.db")), "nothing is recorded for an unknown plugin").toBe(false)
  }, SHORT_TIMEOUT)
})

describe.concurrent("plinth plugins enable and disable", () => {
  it("a disabled plugin refuses invoke with PluginDisabled (exit 5) unless --force; enable lets it run again", async () => {
    const dir = workspace()
    const disabled = await plinth(dir, ["plugins", "disable", "greeter", "--json"])
    expect(disabled.code, disabled.stderr).toBe(0)
    expect(lastJson(disabled)).toEqual({ ok: true, plugin: "greeter", enabled: false, changed: true })
    expect(lastJson(await plinth(dir, ["plugins", "disable", "greeter", "--json"]))).toMatchObject({ changed: false })

    const refused = await greet(dir)
    expect(refused.code).toBe(5)
    expect(lastJson(refused).error).toMatchObject({ _tag: "PluginDisabled", plugin: "greeter" })
    const human = await plinth(dir, ["plugins", "invoke", "greeter", "greet", "--input", '{"name": "Ada"}'])
    expect(human.code).toBe(5)
    expect(human.stderr).toContain("refused [PluginDisabled]: instance 'greeter' of 'greeter' is disabled")
    expect(human.stderr).toContain("--force")
    // The other plugins are not affected.
    expect((await plinth(dir, ["plugins", "invoke", "showcase", "greet", "--input", '{"name": "Ada"}'])).code).toBe(0)

    expect(lastJson(await greet(dir, "--force"))).toMatchObject({ ok: true, result: "Hello, Ada!" })
    expect(lastJson(await plinth(dir, ["plugins", "config", "greeter", "--json"]))).toMatchObject({ enabled: false })

    const enabled = await plinth(dir, ["plugins", "enable", "greeter"])
    expect(enabled.code, enabled.stderr).toBe(0)
    expect(enabled.stdout).toContain("enabled 'greeter'")
    expect(lastJson(await greet(dir))).toMatchObject({ ok: true, result: "Hello, Ada!" })
  }, SEQUENCE_TIMEOUT)

  it("keeps the state per data directory (--data-dir, PLINTH_DATA_DIR)", async () => {
    const dir = workspace()
    expect((await plinth(dir, ["plugins", "disable", "greeter", "--data-dir", "state-a"])).code).toBe(0)
    expect((await greet(dir, "--data-dir", "state-a")).code).toBe(5)
    expect((await plinth(dir, ["plugins", "invoke", "greeter", "greet", "--input", '{"name": "Ada"}'], { PLINTH_DATA_DIR: "state-a" })).code).toBe(5)
    expect((await greet(dir)).code).toBe(0)
    // Each invoke's measured cost goes to its own data directory's database, for `plinth plugins stats`.
    const stats = (...flags: Array<string>) => plinth(dir, ["plugins", "stats", "greeter", "--json", ...flags])
    expect(lastJson(await stats()).records).toMatchObject([{ plugin: "greeter", calls: 1, successes: 1 }])
    expect(lastJson(await stats("--data-dir", "state-a")).records).toEqual([])
  }, SEQUENCE_TIMEOUT)

  it("changes nothing for a plugin the lock does not accept", async () => {
    const dir = workspace()
    const unknown = await plinth(dir, ["plugins", "enable", "nope", "--json"])
    expect(unknown.code).toBe(2)
    expect(lastJson(unknown).error).toMatchObject({ _tag: "PluginNotFound", plugin: "nope" })
    const badLock = await plinth(dir, ["plugins", "disable", "greeter", "--lock", "missing.lock"])
    expect(badLock.code).toBe(4)
    expect(existsSync(join(dir, ".plinth/plinth.db"))).toBe(false)
  }, SHORT_TIMEOUT)
})

describe("plinth plugins stats", () => {
  it("says that nothing is recorded yet, and prints an empty list under --json", async () => {
    const dir = workspace()
    const human = await plinth(dir, ["plugins", "stats"])
    expect(human.code, human.stderr).toBe(0)
    expect(human.stdout).toContain("no resource use recorded yet")
    const machine = await plinth(dir, ["plugins", "stats", "greeter", "--json"])
    expect(machine.code, machine.stderr).toBe(0)
    expect(lastJson(machine)).toEqual({ ok: true, records: [] })
    expect(existsSync(join(dir, ".plinth")), "reading creates no database").toBe(false)
  }, SHORT_TIMEOUT)

  it("prints each record of the EmpiricalStore: calls, success rate, wall and CPU time, peak memory", async () => {
    const dir = workspace()
    const key = { plugin: "greeter", pluginDigest: "h1:0123456789abcdef0123", configHash: configHash({ greeting: "Hi" }) }
    const samples = [
      { success: true, wallMs: 20, cpuMs: 5, peakRssBytes: 40 * 1024 * 1024 },
      { success: true, wallMs: 40, cpuMs: 7, peakRssBytes: 60 * 1024 * 1024 },
      { success: false, wallMs: 60, cpuMs: 9, peakRssBytes: 50 * 1024 * 1024 },
    ]
    await Effect.runPromise(
      Effect.gen(function* () {
        const store = yield* EmpiricalStore
        for (const sample of samples) yield* store.record(key, sample)
        yield* store.record({ ...key, plugin: "showcase" }, samples[0]!)
        yield* store.flush
      }).pipe(Effect.provide(EmpiricalStoreLive().pipe(Layer.provide(DatabaseLive({ dataDir: join(dir, ".plinth") }))))),
    )

    const machine = await plinth(dir, ["plugins", "stats", "greeter", "--json"])
    expect(machine.code, machine.stderr).toBe(0)
    const { records } = lastJson(machine)
    expect(records).toHaveLength(1)
    expect(records[0]).toMatchObject({ plugin: "greeter", pluginDigest: key.pluginDigest, configHash: key.configHash, calls: 3, successes: 2 })
    expect(records[0].successRate).toBeCloseTo(2 / 3, 9)
    expect(records[0].wallMs).toMatchObject({ samples: 3, mean: 40, max: 60 })
    expect(records[0].peakRssBytes.max).toBe(60 * 1024 * 1024)

    const human = await plinth(dir, ["plugins", "stats"])
    expect(human.code, human.stderr).toBe(0)
    const lines = human.stdout.trim().split("\n")
    expect(lines).toHaveLength(3)
    expect(lines[1]).toMatch(/^greeter +h1:0123456789ab… +[0-9a-f]{12} +3 +66\.7% +40\.0 ± 20\.0, 60\.0 +7\.0 +50\.0, 60\.0$/)
    expect(lines[2]).toMatch(/^showcase /)
  }, SHORT_TIMEOUT)
})
