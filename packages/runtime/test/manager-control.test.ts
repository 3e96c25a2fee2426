import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Layer, Queue, Stream } from "effect"
import { dirname } from "node:path"
import type { ManagerEvent } from "@plinth/domain"
import { PluginManager } from "../src/manager/PluginManager.js"
import { makeInMemoryManagerConfigs, ManagerConfigs } from "../src/manager/ManagerConfigs.js"
import { removeDir } from "./workerFixtures.js"
import { isAlive, managerLayer, managerWorkspace, probeSource, recordingSpawner, type ManagerWorkspace } from "./managerFixtures.js"

let ws: ManagerWorkspace
beforeAll(async () => {
  ws = await Effect.runPromise(
    managerWorkspace([
      { id: "probe", source: probeSource() },
      { id: "capped", source: probeSource(), manifest: { resources: { maxConcurrent: 1 } } },
      { id: "open", source: probeSource("Schema.Record({ key: Schema.String, value: Schema.Unknown })") },
      {
        id: "hooky",
        source: probeSource()
          .replace('onEnable: () => Effect.sync(() => void hooks.push("enable")),', 'onEnable: () => Effect.fail(new PluginTransientError({ message: "not now" })),')
          .replace('onDisable: () => Effect.sync(() => void hooks.push("disable")),', 'onDisable: () => Promise.resolve(),'),
      },
    ]),
  )
}, 60_000)
afterAll(() => removeDir(dirname(ws.root)))

/** Waits (politely) until `check` holds; the manager's state changes as workers answer. */
const eventually = <E>(check: Effect.Effect<boolean, E>) =>
  Effect.gen(function* () {
    for (let i = 0; i < 500; i++) {
      if (yield* check) return
      yield* Effect.sleep("10 millis")
    }
    throw new Error("the condition never held")
  })

describe("PluginManager configuration", () => {
  it.live("strict refuses unknown keys (sorted), lenient drops them, defaults apply, and a refused config starts no process", () => {
    const { spawned, layer } = recordingSpawner()
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      const unknown = yield* Effect.flip(manager.load("probe", { config: { zz: 1, greeting: "Hi", aa: 2 } }))
      expect(unknown).toMatchObject({ _tag: "ConfigInvalid", plugin: "probe", fieldsInvalid: ["aa", "zz"] })
      const wrongType = yield* Effect.flip(manager.load("probe", { config: { greeting: 3, zz: 1 } }))
      expect(wrongType).toMatchObject({ _tag: "ConfigInvalid", fieldsInvalid: ["greeting", "zz"] })
      expect((yield* Effect.flip(manager.load("probe", { config: [1] })))._tag).toBe("ConfigInvalid")
      // Refused on the host: no worker was ever started.
      expect(spawned).toEqual([])

      const lenient = yield* manager.load("probe", { config: { greeting: "Hi", zz: 1 }, strict: false })
      expect(lenient.config).toEqual({ greeting: "Hi" })
      expect(yield* manager.execute("probe", "config", {})).toEqual({ greeting: "Hi" })
      const defaults = yield* manager.load("probe", { newInstance: true, config: {} })
      expect(yield* manager.execute(defaults.id, "config", {})).toEqual({ greeting: "Hello" })

      // A schema naming no keys takes any object.
      yield* manager.load("open", { config: { anything: [1, 2], goes: true } })
      expect(yield* manager.execute("open", "config", {})).toEqual({ anything: [1, 2], goes: true })
    }).pipe(Effect.provide(managerLayer(ws, layer)))
  })

  it.live("a config only the plugin's own Schema refuses is ConfigInvalid too, and leaves no worker running", () => {
    const { spawned, layer } = recordingSpawner()
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      // `even` is a refinement JSON Schema cannot state: the host passes 3, the worker's Schema refuses it.
      const refused = yield* Effect.flip(manager.load("probe", { config: { even: 3 } }))
      expect(refused).toMatchObject({ _tag: "ConfigInvalid", plugin: "probe", fieldsInvalid: ["even"] })
      expect(spawned).toHaveLength(1)
      yield* eventually(Effect.sync(() => !isAlive(spawned[0]!)))
      expect(yield* manager.list).toEqual([])
    }).pipe(Effect.provide(managerLayer(ws, layer)))
  })

  it.live("updateConfig checks like load, reloads with a fresh worker, and a refused update leaves the instance as it was", () => {
    const { spawned, layer } = recordingSpawner()
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      const before = yield* manager.load("probe", { config: { greeting: "Hi" } })
      const refused = yield* Effect.flip(manager.updateConfig("probe", { greeting: "Yo", bogus: true }))
      expect(refused).toMatchObject({ _tag: "ConfigInvalid", fieldsInvalid: ["bogus"] })
      expect(spawned).toHaveLength(1)
      const workerRefused = yield* Effect.flip(manager.updateConfig("probe", { even: 5 }))
      expect(workerRefused).toMatchObject({ _tag: "ConfigInvalid", fieldsInvalid: ["even"] })
      expect(yield* manager.get("probe")).toMatchObject({ pid: before.pid, config: { greeting: "Hi" } })
      expect(yield* manager.execute("probe", "config", {})).toEqual({ greeting: "Hi" })

      const after = yield* manager.updateConfig("probe", { greeting: "Yo", bogus: true }, { strict: false })
      expect(after.pid).not.toBe(before.pid)
      expect(after.config).toEqual({ greeting: "Yo" })
      expect(yield* manager.execute("probe", "config", {})).toEqual({ greeting: "Yo" })
      // The default instance's config is remembered: loading it again after an unload uses it.
      yield* manager.unload("probe")
      yield* manager.load("probe")
      expect(yield* manager.execute("probe", "config", {})).toEqual({ greeting: "Yo" })
    }).pipe(Effect.provide(managerLayer(ws, layer)))
  })
})

describe("PluginManager remembered state", () => {
  it.live("the default instance's config and enabled flag live in the ManagerConfigs a host provides, and outlive one manager", () => {
    const { layer } = recordingSpawner()
    const configs = Layer.succeed(ManagerConfigs, makeInMemoryManagerConfigs())
    return Effect.gen(function* () {
      yield* Effect.gen(function* () {
        const manager = yield* PluginManager
        yield* manager.load("probe", { config: { greeting: "Kept" } })
        yield* manager.disable("probe")
        // Extra instances are not remembered.
        yield* manager.load("probe", { instanceId: "extra", config: { greeting: "Gone" } })
      }).pipe(Effect.provide(managerLayer(ws, layer, {}, configs)))
      yield* Effect.gen(function* () {
        const manager = yield* PluginManager
        expect(yield* manager.load("probe")).toMatchObject({ enabled: false, config: { greeting: "Kept" } })
        expect((yield* Effect.flip(manager.execute("probe", "config", {})))._tag).toBe("PluginDisabled")
        yield* manager.enable("probe")
        expect(yield* manager.execute("probe", "config", {})).toEqual({ greeting: "Kept" })
        yield* manager.load("probe", { instanceId: "extra" })
        expect(yield* manager.execute("extra", "config", {})).toEqual({ greeting: "Hello" })
      }).pipe(Effect.provide(managerLayer(ws, layer, {}, configs)))
    })
  })
})

describe("PluginManager enable and disable", () => {
  it.live("a disabled instance refuses calls naming itself; the plugin's other instances go on", () => {
    const { layer } = recordingSpawner()
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      yield* manager.load("probe")
      const extra = yield* manager.load("probe", { newInstance: true })
      yield* manager.disable("probe")
      const refused = yield* Effect.flip(manager.execute("probe", "config", {}))
      expect(refused).toMatchObject({ _tag: "PluginDisabled", plugin: "probe", instance: "probe" })
      expect(refused.message).toContain("'probe'")
      const streamRefused = yield* Effect.flip(Stream.runCollect(manager.stream("probe", "count", { to: 2 })))
      expect(streamRefused._tag).toBe("PluginDisabled")
      expect(yield* manager.execute(extra.id, "config", {})).toEqual({ greeting: "Hello" })
      expect(yield* manager.get("probe")).toMatchObject({ enabled: false })
      expect(yield* manager.get(extra.id)).toMatchObject({ enabled: true })
      yield* manager.enable("probe")
      expect(yield* manager.execute("probe", "hooks", {})).toEqual(["disable", "enable"])
      expect(yield* manager.execute(extra.id, "hooks", {})).toEqual([])
    }).pipe(Effect.provide(managerLayer(ws, layer)))
  })

  it.live("disabling during a call defers onDisable until the call ends, then runs it once; disabling again runs nothing; the same for enable", () => {
    const { layer } = recordingSpawner()
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      yield* manager.load("probe")
      const call = yield* Effect.fork(manager.execute("probe", "slow", { millis: 1000 }))
      yield* eventually(Effect.map(manager.get("probe"), (info) => info.running === 1))
      yield* manager.disable("probe")
      yield* manager.disable("probe")
      // The call in flight saw no hook run while it ran.
      expect(yield* Fiber.join(call)).toMatchObject({ hooks: [] })
      yield* manager.disable("probe")
      yield* manager.enable("probe")
      yield* manager.enable("probe")
      expect(yield* manager.execute("probe", "hooks", {})).toEqual(["disable", "enable"])

      // Disabled then enabled again while a call runs: the worker owes no hook at all.
      const second = yield* Effect.fork(manager.execute("probe", "slow", { millis: 300 }))
      yield* eventually(Effect.map(manager.get("probe"), (info) => info.running === 1))
      yield* manager.disable("probe")
      yield* manager.enable("probe")
      yield* Fiber.join(second)
      expect(yield* manager.execute("probe", "hooks", {})).toEqual(["disable", "enable"])
    }).pipe(Effect.provide(managerLayer(ws, layer)))
  })
})

describe("PluginManager hooks that fail", () => {
  it.live("a hook's failure reaches the caller of disable or enable, typed; the instance's state changes all the same", () => {
    const { layer } = recordingSpawner()
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      yield* manager.load("hooky")
      const notEffect = yield* Effect.flip(manager.disable("hooky"))
      expect(notEffect).toMatchObject({ _tag: "DefinitionInvalid", rule: "lifecycle-function" })
      expect(notEffect.message).toContain("'onDisable' must return an Effect")
      expect(yield* manager.get("hooky")).toMatchObject({ enabled: false })
      const failed = yield* Effect.flip(manager.enable("hooky"))
      expect(failed).toMatchObject({ _tag: "PluginTransientError", message: "not now" })
      expect(yield* manager.execute("hooky", "config", {})).toEqual({ greeting: "Hello" })
    }).pipe(Effect.provide(managerLayer(ws, layer)))
  })
})

describe("PluginManager circuit breaker", () => {
  it.live("five consecutive failures disable the instance with a reason; a success resets the count; input errors do not count; reset re-enables", () => {
    const { layer } = recordingSpawner()
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      yield* manager.load("probe")
      for (let i = 0; i < 4; i++) yield* Effect.flip(manager.execute("probe", "fail", { category: "transient" }))
      yield* manager.execute("probe", "config", {})
      expect((yield* manager.get("probe")).consecutiveFailures).toBe(0)
      for (let i = 0; i < 4; i++) yield* Effect.flip(manager.execute("probe", "fail", { category: "fatal" }))
      for (let i = 0; i < 3; i++) yield* Effect.flip(manager.execute("probe", "fail", { category: "input" }))
      expect(yield* manager.get("probe")).toMatchObject({ enabled: true, consecutiveFailures: 4 })
      const fifth = yield* Effect.flip(manager.execute("probe", "fail", { category: "transient" }))
      expect(fifth._tag).toBe("PluginTransientError")
      const refused = yield* Effect.flip(manager.execute("probe", "config", {}))
      expect(refused).toMatchObject({ _tag: "PluginDisabled", instance: "probe" })
      expect(refused._tag === "PluginDisabled" && refused.reason).toContain("5 consecutive failures")
      yield* manager.reset("probe")
      expect(yield* manager.get("probe")).toMatchObject({ enabled: true, consecutiveFailures: 0 })
      expect(yield* manager.execute("probe", "config", {})).toEqual({ greeting: "Hello" })
    }).pipe(Effect.provide(managerLayer(ws, layer)))
  })

  it.live("timeouts count as failures", () => {
    const { layer } = recordingSpawner()
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      yield* manager.load("probe")
      for (let i = 0; i < 2; i++) {
        expect((yield* Effect.flip(manager.execute("probe", "slow", { millis: 5000 }, { timeout: "50 millis" })))._tag).toBe("InvokeTimeout")
      }
      expect((yield* Effect.flip(manager.execute("probe", "config", {})))._tag).toBe("PluginDisabled")
    }).pipe(Effect.provide(managerLayer(ws, layer, { breakerThreshold: 2 })))
  })
})

describe("PluginManager concurrency cap", () => {
  it.live("calls beyond the manifest's maxConcurrent wait and run in the order they came", () => {
    const { layer } = recordingSpawner()
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      yield* manager.load("capped")
      const finished: Array<number> = []
      const fibers: Array<Fiber.RuntimeFiber<unknown, unknown>> = []
      for (let tag = 0; tag < 6; tag++) {
        // The first call holds the only slot while the others queue up behind it.
        const millis = tag === 0 ? 2000 : 10
        fibers.push(yield* Effect.fork(Effect.tap(manager.execute("capped", "slow", { millis, tag }), () => Effect.sync(() => finished.push(tag)))))
        // Each call is queued before the next is made, so their order is known.
        yield* eventually(Effect.map(manager.get("capped"), (info) => info.running === 1 && info.waiting === tag))
      }
      const results = yield* Fiber.joinAll(fibers)
      void results
      expect(finished).toEqual([0, 1, 2, 3, 4, 5])
      expect(yield* manager.execute("capped", "slow", { millis: 0 })).toMatchObject({ most: 1 })
    }).pipe(Effect.provide(managerLayer(ws, layer)))
  })

  it.live("a cap given at load bounds the calls running at once; the wait is bounded", () => {
    const { layer } = recordingSpawner()
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      yield* manager.load("probe", { maxConcurrent: 2 })
      const results = yield* Effect.forEach(Array.from({ length: 6 }, (_, tag) => tag), (tag) => manager.execute("probe", "slow", { millis: 30, tag }), {
        concurrency: "unbounded",
      })
      expect(Math.max(...results.map((r) => (r as { most: number }).most))).toBe(2)
      // maxWaiting 4: with two running and four waiting, a seventh call is refused at once, typed.
      const running = yield* Effect.forEach([0, 1, 2, 3, 4, 5], (tag) => Effect.fork(manager.execute("probe", "slow", { millis: 300, tag })))
      yield* eventually(Effect.map(manager.get("probe"), (info) => info.running === 2 && info.waiting === 4))
      expect((yield* Effect.flip(manager.execute("probe", "config", {})))._tag).toBe("PluginTransientError")
      yield* Fiber.joinAll(running)
    }).pipe(Effect.provide(managerLayer(ws, layer, { maxWaiting: 4 })))
  })
})

describe("PluginManager warm workers and events", () => {
  it.scopedLive("prefetch starts idle workers that a later load takes instead of spawning; closing the manager stops the idle ones too", () => {
    const { spawned, layer } = recordingSpawner()
    const run = Effect.gen(function* () {
      const manager = yield* PluginManager
      yield* manager.prefetch("probe", 2)
      expect(spawned).toHaveLength(2)
      expect(yield* manager.warm("probe")).toBe(2)
      const events = yield* manager.subscribe
      const loaded = yield* manager.load("probe")
      expect(spawned).toHaveLength(2)
      expect(spawned).toContain(loaded.pid)
      expect(yield* manager.warm("probe")).toBe(1)
      expect(yield* Queue.take(events)).toMatchObject({ _tag: "loaded", instance: "probe", warm: true, pid: loaded.pid })
      const second = yield* manager.load("probe", { newInstance: true })
      expect(spawned).toHaveLength(2)
      expect(second.pid).not.toBe(loaded.pid)
      expect(yield* manager.execute(second.id, "config", {})).toEqual({ greeting: "Hello" })
      // A config the warm workers were not started with needs a worker of its own.
      yield* manager.prefetch("probe", 1)
      yield* manager.load("probe", { newInstance: true, config: { greeting: "Other" } })
      expect(spawned).toHaveLength(4)
      expect(yield* manager.warm("probe")).toBe(1)
    }).pipe(Effect.scoped, Effect.provide(managerLayer(ws, layer)))
    return Effect.gen(function* () {
      yield* run
      for (const pid of spawned) expect(isAlive(pid)).toBe(false)
    })
  })

  it.scopedLive("lifecycle events: loaded, disabled, enabled, crashed, restarted, breaker opened, config changed, unloaded", () => {
    const { layer } = recordingSpawner()
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      const events = yield* manager.subscribe
      const loaded = yield* manager.load("probe")
      yield* manager.disable("probe")
      yield* manager.enable("probe")
      process.kill(loaded.pid!, "SIGKILL")
      yield* eventually(Effect.map(Queue.size(events), (n) => n >= 4))
      expect(yield* manager.execute("probe", "config", {})).toEqual({ greeting: "Hello" })
      yield* Effect.flip(manager.execute("probe", "fail", { category: "fatal" }))
      yield* manager.reset("probe")
      yield* manager.updateConfig("probe", { greeting: "Hi" })
      yield* manager.unload("probe")
      const seen = Chunk.toArray(yield* Queue.takeAll(events)) as Array<ManagerEvent>
      expect(seen.map((event) => event._tag)).toEqual([
        "loaded",
        "disabled",
        "enabled",
        "crashed",
        "restarted",
        "breakerOpened",
        "disabled",
        "enabled",
        "configChanged",
        "unloaded",
      ])
      expect(seen.every((event) => event.plugin === "probe" && event.instance === "probe")).toBe(true)
      expect(seen[3]).toMatchObject({ pid: loaded.pid, signal: "SIGKILL" })
      expect(seen[5]).toMatchObject({ failures: 1, lastFailure: "PluginFatalError: broken" })
    }).pipe(Effect.provide(managerLayer(ws, layer, { breakerThreshold: 1 })))
  })
})
