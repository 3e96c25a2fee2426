import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, Option, Stream } from "effect"
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import Sqlite from "better-sqlite3"
import { PlinthLive } from "../src/Layers.js"
import { PluginManager, PluginManagerLive } from "../src/manager/PluginManager.js"
import { ManagerConfigsFromStore } from "../src/manager/ManagerConfigs.js"
import { ConfigStoreLive } from "../src/stores/ConfigStore.js"
import { DatabaseLive, databasePath } from "../src/stores/Database.js"
import { EmpiricalStore, EmpiricalStoreLive, EmpiricalStoreMemory } from "../src/stores/EmpiricalStore.js"
import { configHash } from "../src/hashing/ConfigHash.js"
import { decodeWorkerMessage, type CallUsage } from "../src/wire/Protocol.js"
import { removeDir } from "./workerFixtures.js"
import { managerWorkspace, recordingSpawner, type ManagerWorkspace } from "./managerFixtures.js"

/** Actions whose cost is known: nothing, touching memory, burning CPU, failing. */
const meterSource = `
import { Effect, Schema, Stream } from "effect"
import { definePlugin, PluginTransientError } from "@plinth/domain"
export default definePlugin({
  config: Schema.Struct({ label: Schema.optional(Schema.String), n: Schema.optional(Schema.Number) }),
  actions: ({ action, streaming }) => ({
    idle: action({ description: "does nothing", input: Schema.Struct({}), output: Schema.Null, handler: () => Effect.succeed(null) }),
    allocate: action({
      description: "touches every byte of mib MiB, then lets them go",
      input: Schema.Struct({ mib: Schema.Number }),
      output: Schema.Number,
      handler: ({ mib }) => Effect.sync(() => { const bytes = new Uint8Array(mib * 1024 * 1024); bytes.fill(1); return bytes[bytes.length - 1] }),
    }),
    burn: action({
      description: "keeps the CPU busy for millis",
      input: Schema.Struct({ millis: Schema.Number }),
      output: Schema.Number,
      handler: ({ millis }) => Effect.sync(() => { const end = Date.now() + millis; let spins = 0; while (Date.now() < end) spins++; return spins }),
    }),
    flaky: action({ description: "fails, transiently", input: Schema.Struct({}), output: Schema.Null, handler: () => Effect.fail(new PluginTransientError({ message: "not now" })) }),
    count: streaming({ description: "counts to n", input: Schema.Struct({ to: Schema.Number }), output: Schema.Number, stream: ({ to }) => Stream.range(1, to) }),
  }),
})
`

let ws: ManagerWorkspace
let digest: string
beforeAll(async () => {
  ws = await Effect.runPromise(managerWorkspace([{ id: "meter", source: meterSource }]))
  digest = JSON.parse(readFileSync(ws.lock, "utf8")).plugins.meter.digest
}, 60_000)
afterAll(() => removeDir(dirname(ws.root)))

const managerOptions = () => ({ root: ws.root, lock: ws.lock, dataRoot: ws.dataRoot, isolation: "permissions" as const })

/** A manager over an in-memory EmpiricalStore the test can read too. */
const withMemoryStore = () =>
  PluginManagerLive(managerOptions()).pipe(Layer.provideMerge(Layer.mergeAll(PlinthLive, recordingSpawner().layer, EmpiricalStoreMemory)))

/** A manager whose configs and samples live in the SQLite file under `dataDir`, as a host wires it. */
const withDatabase = (dataDir: string) => {
  const stores = Layer.mergeAll(ConfigStoreLive, EmpiricalStoreLive()).pipe(Layer.provideMerge(DatabaseLive({ dataDir })))
  return PluginManagerLive(managerOptions()).pipe(
    Layer.provideMerge(Layer.mergeAll(PlinthLive, recordingSpawner().layer, ManagerConfigsFromStore.pipe(Layer.provideMerge(stores)))),
  )
}

const freshDataDir = () => mkdtempSync(join(tmpdir(), "plinth-usage-"))
const MiB = 1024 * 1024

/** Runs a call and returns what the worker reported for it. */
const reported = <E>(run: (onUsage: (usage: CallUsage) => void) => Effect.Effect<unknown, E>) =>
  Effect.gen(function* () {
    let usage: CallUsage | undefined
    yield* Effect.either(run((u) => void (usage = u)))
    expect(usage).toBeDefined()
    return usage!
  })

describe("measured usage", () => {
  it.live("each call reports the worker's CPU time and peak RSS: touching 50 MiB raises the peak, a busy loop shows CPU time", () =>
    Effect.gen(function* () {
      const manager = yield* PluginManager
      yield* manager.load("meter")
      const idle = yield* reported((onUsage) => manager.execute("meter", "idle", {}, { onUsage }))
      expect(idle.peakRssBytes).toBeGreaterThan(10 * MiB)
      expect(idle.cpuMs).toBeGreaterThanOrEqual(0)

      const allocated = yield* reported((onUsage) => manager.execute("meter", "allocate", { mib: 50 }, { onUsage }))
      expect(allocated.peakRssBytes - idle.peakRssBytes).toBeGreaterThan(40 * MiB)

      // The machine is shared: the loop gets some of a core while it runs, however little, and an idle call next to nothing.
      const started = performance.now()
      const burnt = yield* reported((onUsage) => manager.execute("meter", "burn", { millis: 300 }, { onUsage }))
      const wallMs = performance.now() - started
      expect(burnt.cpuMs).toBeGreaterThan(0.1 * wallMs)
      expect(burnt.cpuMs).toBeLessThan(wallMs * 1.5)
      expect(burnt.cpuMs).toBeGreaterThan(idle.cpuMs)
      // Peak RSS is the process's high-water mark: it never falls.
      expect(burnt.peakRssBytes).toBeGreaterThanOrEqual(allocated.peakRssBytes)

      // A stream reports when it ends; a failure reports too.
      const streamed = yield* reported((onUsage) => Stream.runDrain(manager.stream("meter", "count", { to: 3 }, { onUsage })))
      expect(streamed.peakRssBytes).toBeGreaterThan(0)
      const failed = yield* reported((onUsage) => manager.execute("meter", "flaky", {}, { onUsage }))
      expect(failed.peakRssBytes).toBeGreaterThan(0)
    }).pipe(Effect.provide(withMemoryStore())),
  )

  it.live("the manager records one sample per finished call, keyed by plugin, verified digest and config hash; stats(id) returns the aggregate", () =>
    Effect.gen(function* () {
      const manager = yield* PluginManager
      const store = yield* EmpiricalStore
      yield* manager.load("meter", { config: { label: "x", n: 1 } })
      // Key order does not matter: the second instance shares the first one's record.
      const other = yield* manager.load("meter", { newInstance: true, config: { n: 1, label: "x" } })
      let last: CallUsage | undefined
      yield* manager.execute("meter", "allocate", { mib: 50 }, { onUsage: (u) => void (last = u) })
      yield* manager.execute(other.id, "idle", {})
      yield* Effect.flip(manager.execute("meter", "flaky", {}))
      // The caller's mistakes are not the plugin's cost: refused input is not a sample.
      expect((yield* Effect.flip(manager.execute("meter", "allocate", { mib: "lots" })))._tag).toBe("PluginInputError")
      yield* manager.disable(other.id)
      yield* Effect.flip(manager.execute(other.id, "idle", {}))

      const stats = yield* manager.stats("meter")
      expect(stats.key).toEqual({ plugin: "meter", pluginDigest: digest, configHash: configHash({ label: "x", n: 1 }) })
      expect(stats.aggregate).toMatchObject({ count: 3, successes: 2 })
      expect(stats.aggregate.cpuMs.count).toBe(3)
      expect(stats.aggregate.peakRssBytes.max).toBeGreaterThan(50 * MiB)
      expect(stats.summary.successRate).toBeCloseTo(2 / 3, 9)
      // The last values are the current worker's own: the flaky call's, on "meter".
      expect(stats.last).toBeDefined()
      expect(stats.last!.peakRssBytes).toBeGreaterThanOrEqual(last!.peakRssBytes)
      expect(Option.getOrThrow(yield* store.get(stats.key)).aggregate.count).toBe(3)
      // Measured on demand too, from outside the worker: its resident memory and CPU time as it is now.
      expect(stats.now).toBeDefined()
      expect(stats.now!.rssBytes).toBeGreaterThan(50 * MiB)
      expect(stats.now!.cpuMillis).toBeGreaterThan(0)

      // Another config is another record.
      yield* manager.updateConfig(other.id, { label: "y" })
      yield* manager.enable(other.id)
      yield* manager.execute(other.id, "idle", {})
      const otherStats = yield* manager.stats(other.id)
      expect(otherStats.key.configHash).toBe(configHash({ label: "y" }))
      expect(otherStats.aggregate.count).toBe(1)
      expect((yield* Effect.flip(manager.stats("nobody")))._tag).toBe("InstanceNotLoaded")
    }).pipe(Effect.provide(withMemoryStore())),
  )

  it.live("samples reach the SQLite file after a flush and add up across manager lifetimes", () =>
    Effect.gen(function* () {
      const dataDir = freshDataDir()
      const calls = (n: number) =>
        Effect.gen(function* () {
          const manager = yield* PluginManager
          yield* manager.load("meter")
          for (let i = 0; i < n; i++) yield* manager.execute("meter", "burn", { millis: 5 })
          yield* (yield* EmpiricalStore).flush
          return (yield* manager.stats("meter")).key
        })
      const key = yield* calls(3).pipe(Effect.provide(withDatabase(dataDir)))
      const rows = () => {
        const db = new Sqlite(databasePath({ dataDir }), { readonly: true })
        try {
          return db.prepare("SELECT calls, successes, cpu_count, rss_max FROM empirical_records WHERE plugin = ? AND plugin_digest = ? AND config_hash = ?").all(key.plugin, key.pluginDigest, key.configHash)
        } finally {
          db.close()
        }
      }
      expect(rows()).toEqual([{ calls: 3, successes: 3, cpu_count: 3, rss_max: expect.any(Number) }])
      yield* calls(2).pipe(Effect.provide(withDatabase(dataDir)))
      expect(rows()).toMatchObject([{ calls: 5, successes: 5, cpu_count: 5 }])
      removeDir(dataDir)
    }),
  )
})

describe("the sample writer", () => {
  it.live("lets samples gather (one transaction for many calls), and a flush cuts the wait short, even behind more than a batch", () =>
    Effect.gen(function* () {
      const dataDir = freshDataDir()
      // A linger no test would wait for: a flush that did not cut it short would time this test out.
      const live = EmpiricalStoreLive({ lingerMs: 600_000, maxBatch: 2 }).pipe(Layer.provide(DatabaseLive({ dataDir })))
      yield* Effect.gen(function* () {
        const store = yield* EmpiricalStore
        const key = { plugin: "p", pluginDigest: "d", configHash: configHash({}) }
        for (let i = 0; i < 5; i++) yield* store.record(key, { success: true, wallMs: 10 * (i + 1) })
        yield* store.flush
        expect(Option.getOrThrow(yield* store.get(key)).aggregate).toMatchObject({ count: 5, wallMs: { mean: 30, max: 50 } })
        yield* store.record(key, { success: false, wallMs: 1 })
        yield* store.flush
        expect(Option.getOrThrow(yield* store.get(key)).aggregate).toMatchObject({ count: 6, successes: 5 })
      }).pipe(Effect.provide(live), Effect.timeout("20 seconds"))
      removeDir(dataDir)
    }),
  )
})

describe("persisted configs", () => {
  it.live("the default instance's config and enabled flag survive a manager restart on one SQLite file; extra instances are not remembered", () =>
    Effect.gen(function* () {
      const dataDir = freshDataDir()
      yield* Effect.gen(function* () {
        const manager = yield* PluginManager
        yield* manager.load("meter", { config: { label: "kept" } })
        yield* manager.load("meter", { instanceId: "extra", config: { label: "extra" } })
        yield* manager.disable("meter")
      }).pipe(Effect.provide(withDatabase(dataDir)))

      yield* Effect.gen(function* () {
        const manager = yield* PluginManager
        expect(yield* manager.list).toEqual([])
        const again = yield* manager.load("meter")
        expect(again).toMatchObject({ config: { label: "kept" }, enabled: false })
        expect((yield* Effect.flip(manager.execute("meter", "idle", {})))._tag).toBe("PluginDisabled")
        const extra = yield* manager.load("meter", { instanceId: "extra" })
        expect(extra).toMatchObject({ config: {}, enabled: true })
        yield* manager.enable("meter")
        yield* manager.updateConfig("meter", { label: "changed" })
      }).pipe(Effect.provide(withDatabase(dataDir)))

      const third = yield* Effect.flatMap(PluginManager, (manager) => manager.load("meter")).pipe(Effect.provide(withDatabase(dataDir)))
      expect(third).toMatchObject({ config: { label: "changed" }, enabled: true })
      removeDir(dataDir)
    }),
  )
})

describe("usage on the wire", () => {
  const success = (usage: unknown) => decodeWorkerMessage({ _tag: "Success", id: 0, value: null, usage })
  it("finite non-negative numbers pass; NaN (null on the wire), infinities, negatives, strings and extra keys are protocol errors", () => {
    expect(Either.isRight(success({ cpuMs: 0, peakRssBytes: 123 }))).toBe(true)
    expect(Either.isRight(decodeWorkerMessage({ _tag: "End", id: 0, usage: { cpuMs: 1.5, peakRssBytes: 0 } }))).toBe(true)
    for (const bad of [
      { cpuMs: null, peakRssBytes: 1 },
      { cpuMs: Number.NaN, peakRssBytes: 1 },
      { cpuMs: Infinity, peakRssBytes: 1 },
      { cpuMs: 1, peakRssBytes: -1 },
      { cpuMs: "1", peakRssBytes: 1 },
      { cpuMs: 1 },
      { cpuMs: 1, peakRssBytes: 1, wallMs: 1 },
    ]) {
      const decoded = success(bad)
      expect(Either.isLeft(decoded) && decoded.left._tag).toBe("ProtocolError")
      const failure = decodeWorkerMessage({ _tag: "Failure", id: 0, error: { _tag: "PluginFatalError", message: "x" }, usage: bad })
      expect(Either.isLeft(failure)).toBe(true)
    }
    // A chunk is not a final frame: it carries no usage.
    expect(Either.isLeft(decodeWorkerMessage({ _tag: "Chunk", id: 0, value: 1, usage: { cpuMs: 0, peakRssBytes: 0 } }))).toBe(true)
  })
})
