import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Layer, Queue, Stream } from "effect"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { existsSync, readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import type { ManagerEvent } from "@plinth/domain"
import { PluginManager, PluginManagerLive } from "../src/manager/PluginManager.js"
import { EmpiricalStoreMemory } from "../src/stores/EmpiricalStore.js"
import { CallTrace, CallTraceLive } from "../src/observability/CallTrace.js"
import { PlinthLive } from "../src/Layers.js"
import { removeDir } from "./workerFixtures.js"
import { isAlive, managerLayer, managerWorkspace, probeSource, recordingSpawner, type ManagerWorkspace } from "./managerFixtures.js"

/*
 * Retry after eviction and scheduling applied, with real worker processes.
 * `hungry` has a 64 MiB heap cap; its `grow` action notes each attempt in its
 * data folder, then fills more heap than the cap allows ("always"), or only
 * when its marker file is absent, creating the marker first ("once"): the
 * first worker dies of it, a fresh one finds the marker and succeeds.
 */
const hungrySource = `
import { Effect, Schema, Stream } from "effect"
import { appendFileSync, existsSync, writeFileSync } from "node:fs"
import { definePlugin, PluginInputError, PluginFatalError, PluginResourceError } from "@plinth/domain"
const bomb = () => {
  const hoard = []
  for (let i = 0; i < 512; i++) hoard.push(new Array(128 * 1024).fill(i))
  return hoard.length
}
export default definePlugin({
  config: Schema.Struct({}),
  actions: ({ action, streaming }) => ({
    growStream: streaming({
      description: "streams three words after running out of heap (always, or once per marker), or after its first word (late)",
      input: Schema.Struct({ marker: Schema.String, mode: Schema.Literal("once", "always", "late") }),
      output: Schema.String,
      stream: ({ marker, mode }, { dataDir }) =>
        Stream.suspend(() => {
          appendFileSync(dataDir + "/" + marker + ".attempts", "x")
          const seen = existsSync(dataDir + "/" + marker)
          writeFileSync(dataDir + "/" + marker, "")
          if (mode === "late") return Stream.concat(Stream.make("first"), Stream.fromEffect(Effect.delay(Effect.sync(() => String(bomb())), "300 millis")))
          if (mode === "always" || !seen) bomb()
          return Stream.make("a", "b", "c")
        }),
    }),
    grow: action({
      description: "runs out of heap: always, or once per marker",
      input: Schema.Struct({ marker: Schema.String, mode: Schema.Literal("once", "always") }),
      output: Schema.String,
      handler: ({ marker, mode }, { dataDir }) =>
        Effect.sync(() => {
          appendFileSync(dataDir + "/" + marker + ".attempts", "x")
          const seen = existsSync(dataDir + "/" + marker)
          writeFileSync(dataDir + "/" + marker, "")
          if (mode === "always" || !seen) bomb()
          return "grown"
        }),
    }),
    short: action({
      description: "says it lacks 150 MiB",
      input: Schema.Struct({ marker: Schema.String }),
      output: Schema.String,
      handler: ({ marker }, { dataDir }) =>
        Effect.sync(() => appendFileSync(dataDir + "/" + marker + ".attempts", "x")).pipe(
          Effect.zipRight(Effect.fail(new PluginResourceError({ message: "not enough memory for the model", shortfall: { resource: "memory_mb", needed: 250, available: 100 } }))),
        ),
    }),
    fail: action({
      description: "fails in the category asked for, noting the attempt",
      input: Schema.Struct({ marker: Schema.String, category: Schema.Literal("input", "fatal") }),
      output: Schema.Null,
      handler: ({ marker, category }, { dataDir }) =>
        Effect.sync(() => appendFileSync(dataDir + "/" + marker + ".attempts", "x")).pipe(
          Effect.zipRight(Effect.fail(category === "input" ? new PluginInputError({ message: "bad input" }) : new PluginFatalError({ message: "broken" }))),
        ),
    }),
  }),
})
`

let ws: ManagerWorkspace
beforeAll(async () => {
  ws = await Effect.runPromise(
    managerWorkspace([
      { id: "hungry", source: hungrySource, manifest: { resources: { memoryMiB: 64 }, permissions: { dataDir: true } } },
      { id: "probe", source: probeSource(), manifest: { resources: { memoryMiB: 100 } } },
      { id: "other", source: probeSource(), manifest: { resources: { memoryMiB: 100 } } },
      { id: "big", source: probeSource(), manifest: { resources: { memoryMiB: 400 } } },
    ]),
  )
}, 120_000)
afterAll(() => removeDir(dirname(ws.root)))

const attemptsOf = (marker: string) => {
  const file = join(ws.dataRoot, "hungry", `${marker}.attempts`)
  return existsSync(file) ? readFileSync(file, "utf8").length : 0
}

const drained = (events: Queue.Dequeue<ManagerEvent>) => Effect.map(Queue.takeAll(events), (all) => Chunk.toArray(all))

/** Waits (politely) until `check` holds. */
const eventually = (check: () => boolean) =>
  Effect.gen(function* () {
    for (let i = 0; i < 500; i++) {
      if (check()) return
      yield* Effect.sleep("10 millis")
    }
    throw new Error("the condition never held")
  })

describe("retry after eviction", () => {
  it.scopedLive("a stream that runs out of heap before its first element is retried on a fresh worker and delivers every element once; one that fails after an element is not retried", () => {
    const { layer } = recordingSpawner()
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      yield* manager.load("hungry")
      const events = yield* manager.subscribe
      const words = yield* Stream.runCollect(manager.stream("hungry", "growStream", { marker: "stream-once", mode: "once" }))
      expect(Chunk.toArray(words)).toEqual(["a", "b", "c"])
      expect(attemptsOf("stream-once")).toBe(2)
      expect((yield* drained(events)).filter((e) => e._tag === "retryStarted")).toMatchObject([
        { _tag: "retryStarted", instance: "hungry", action: "growStream", attempt: 2, failure: "WorkerOutOfMemory" },
      ])

      const seen: Array<unknown> = []
      const late = yield* Effect.flip(Stream.runForEach(manager.stream("hungry", "growStream", { marker: "stream-late", mode: "late" }), (word) => Effect.sync(() => seen.push(word))))
      expect(late._tag).toBe("WorkerOutOfMemory")
      expect(seen).toEqual(["first"])
      expect(attemptsOf("stream-late")).toBe(1)

      const always = yield* Effect.flip(Stream.runCollect(manager.stream("hungry", "growStream", { marker: "stream-always", mode: "always" })))
      expect(always).toMatchObject({ _tag: "WorkerOutOfMemory", attempts: 2 })
      expect(attemptsOf("stream-always")).toBe(2)
    }).pipe(Effect.provide(managerLayer(ws, layer)))
  }, 120_000)

  it.scopedLive("a call that runs out of heap is retried once on a fresh worker, after evicting exactly the least recently used idle instance of another plugin", () => {
    const { spawned, layer } = recordingSpawner()
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      const sibling = yield* manager.load("hungry", { newInstance: true })
      const a = yield* manager.load("probe", { instanceId: "a" })
      const b = yield* manager.load("other", { instanceId: "b" })
      const failing = yield* manager.load("hungry")
      // The sibling is the least recently used of all: it must still not be evicted.
      yield* manager.execute("a", "config", {})
      yield* manager.execute("b", "config", {})
      const events = yield* manager.subscribe
      expect(yield* manager.execute("hungry", "grow", { marker: "once", mode: "once" })).toBe("grown")
      expect(attemptsOf("once")).toBe(2)

      const seen = yield* drained(events)
      expect(seen.filter((e) => e._tag === "evicted")).toMatchObject([{ _tag: "evicted", instance: "a", plugin: "probe", cause: "retry", for: "hungry" }])
      expect(seen.filter((e) => e._tag === "retryStarted")).toMatchObject([
        { _tag: "retryStarted", instance: "hungry", action: "grow", attempt: 2, maxAttempts: 2, failure: "WorkerOutOfMemory", evicted: ["a"] },
      ])
      expect(isAlive(a.pid!)).toBe(false)
      expect((yield* manager.list).map((i) => i.id).sort()).toEqual(["b", "hungry", sibling.id].sort())
      // Always a fresh worker: the reload spawned one process, and only one.
      const now = yield* manager.get("hungry")
      expect(now.pid).not.toBe(failing.pid)
      expect(spawned).toEqual([sibling.pid, a.pid, b.pid, failing.pid, now.pid])
      expect(isAlive(b.pid!)).toBe(true)
      expect(isAlive(sibling.pid!)).toBe(true)
    }).pipe(Effect.provide(managerLayer(ws, layer)))
  })

  it.scopedLive("a call that always runs out makes exactly two attempts with one reload, then fails typed with the attempts recorded; the retry is in the call trace", () => {
    const { spawned, layer } = recordingSpawner()
    const traceLayer = CallTraceLive(join(dirname(ws.root), "trace.jsonl")).pipe(Layer.provide(NodeContext.layer))
    const managerWithTrace = PluginManagerLive({ root: ws.root, lock: ws.lock, dataRoot: ws.dataRoot, isolation: "permissions" }).pipe(
      Layer.provideMerge(Layer.mergeAll(PlinthLive, layer, traceLayer, EmpiricalStoreMemory)),
    )
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      yield* manager.load("hungry")
      const events = yield* manager.subscribe
      const failure = yield* Effect.flip(manager.execute("hungry", "grow", { marker: "always", mode: "always" }))
      expect(failure).toMatchObject({ _tag: "WorkerOutOfMemory", plugin: "hungry", attempts: 2 })
      expect(failure.message).toContain("2 attempts")
      expect(attemptsOf("always")).toBe(2)
      expect(spawned).toHaveLength(2)
      const seen = yield* drained(events)
      expect(seen.filter((e) => e._tag === "retryStarted")).toMatchObject([{ attempt: 2, maxAttempts: 2, evicted: [] }])
      // The instance stays loaded and usable for the next call.
      expect((yield* manager.get("hungry")).pid).toBe(spawned[1])
      const { calls } = yield* Effect.flatMap(CallTrace, (trace) => trace.recent(10))
      expect(calls).toMatchObject([{ plugin: "hungry", instance: "hungry", action: "grow", outcome: "failed", category: "resource", attempt: 1 }])
      expect(calls[0]!.message).toContain("retrying on a fresh worker (attempt 2 of 2)")
    }).pipe(Effect.provide(managerWithTrace))
  })

  it.scopedLive("calls that fail together on one worker share one eviction and one fresh worker, then all succeed", () => {
    const { spawned, layer } = recordingSpawner()
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      yield* manager.load("probe", { instanceId: "idle1" })
      yield* manager.load("other", { instanceId: "idle2" })
      yield* manager.load("probe", { instanceId: "idle3" })
      yield* manager.load("hungry")
      const events = yield* manager.subscribe
      const results = yield* Effect.all(
        [1, 2, 3].map(() => manager.execute("hungry", "grow", { marker: "crowd", mode: "once" })),
        { concurrency: "unbounded" },
      )
      expect(results).toEqual(["grown", "grown", "grown"])
      const seen = yield* drained(events)
      expect(seen.filter((e) => e._tag === "evicted").map((e) => e.instance)).toEqual(["idle1"])
      const retries = seen.filter((e) => e._tag === "retryStarted")
      expect(retries).toHaveLength(3)
      expect(retries.flatMap((e) => e.evicted)).toEqual(["idle1"])
      expect(spawned).toHaveLength(5)
      expect((yield* manager.list).map((i) => i.id)).toEqual(["hungry", "idle2", "idle3"])
    }).pipe(Effect.provide(managerLayer(ws, layer)))
  })

  it.scopedLive("with a known shortfall, the fewest idle instances that cover it, least recently used first; the failing plugin's siblings never", () => {
    const { layer } = recordingSpawner()
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      // Known last uses, oldest first: the siblings, then x, y, z; the shortfall is 150 MiB, each costs 100.
      const siblings = [yield* manager.load("hungry", { newInstance: true }), yield* manager.load("hungry", { newInstance: true })]
      yield* manager.load("probe", { instanceId: "z" })
      yield* manager.load("other", { instanceId: "x" })
      yield* manager.load("probe", { instanceId: "y" })
      yield* manager.load("hungry")
      for (const id of ["x", "y", "z"]) yield* manager.execute(id, "config", {})
      const events = yield* manager.subscribe
      const failure = yield* Effect.flip(manager.execute("hungry", "short", { marker: "short" }))
      expect(failure).toMatchObject({ _tag: "PluginResourceError", attempts: 2, shortfall: { needed: 250, available: 100 } })
      expect(attemptsOf("short")).toBe(2)
      const seen = yield* drained(events)
      expect(seen.filter((e) => e._tag === "evicted").map((e) => e.instance)).toEqual(["x", "y"])
      expect(seen.filter((e) => e._tag === "retryStarted")).toMatchObject([{ attempt: 2, failure: "PluginResourceError", evicted: ["x", "y"] }])
      const left = (yield* manager.list).map((i) => i.id)
      expect(left).toEqual(expect.arrayContaining(["z", "hungry", ...siblings.map((s) => s.id)]))
      expect(left).not.toContain("x")
      expect(left).not.toContain("y")
    }).pipe(Effect.provide(managerLayer(ws, layer, { policy: "safety", memoryBudgetMiB: 10_000 })))
  })

  it.scopedLive("maxRetries 0: one attempt, no reload, no eviction; the failure carries no attempts", () => {
    const { spawned, layer } = recordingSpawner()
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      yield* manager.load("probe", { instanceId: "idle" })
      yield* manager.load("hungry")
      const events = yield* manager.subscribe
      const failure = yield* Effect.flip(manager.execute("hungry", "grow", { marker: "zero", mode: "always" }))
      expect(failure._tag).toBe("WorkerOutOfMemory")
      expect(failure).not.toHaveProperty("attempts")
      expect(attemptsOf("zero")).toBe(1)
      expect(spawned).toHaveLength(2)
      expect((yield* drained(events)).filter((e) => e._tag === "retryStarted" || e._tag === "evicted")).toEqual([])
      expect((yield* manager.list).map((i) => i.id).sort()).toEqual(["hungry", "idle"])
    }).pipe(Effect.provide(managerLayer(ws, layer, { maxRetries: 0 })))
  })

  it.scopedLive("input and fatal failures are never retried", () => {
    const { spawned, layer } = recordingSpawner()
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      yield* manager.load("probe", { instanceId: "idle" })
      yield* manager.load("hungry")
      const events = yield* manager.subscribe
      for (const category of ["input", "fatal"] as const) {
        const failure = yield* Effect.flip(manager.execute("hungry", "fail", { marker: `fail-${category}`, category }))
        expect(failure._tag).toBe(category === "input" ? "PluginInputError" : "PluginFatalError")
        expect(attemptsOf(`fail-${category}`)).toBe(1)
      }
      expect(spawned).toHaveLength(2)
      expect((yield* drained(events)).filter((e) => e._tag === "retryStarted" || e._tag === "evicted")).toEqual([])
    }).pipe(Effect.provide(managerLayer(ws, layer, { maxRetries: 3 })))
  })
})

describe("scheduling applied", () => {
  it.scopedLive("safety refuses, before any process starts, a candidate larger than the budget or one that fits only once busy instances finish", () => {
    const { spawned, layer } = recordingSpawner()
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      const tooBig = yield* Effect.flip(manager.load("big"))
      expect(tooBig).toMatchObject({ _tag: "AdmissionRefused", plugin: "big", instance: "big", reason: { _tag: "LargerThanBudget", expectedMiB: 400, budgetMiB: 150 } })
      expect(spawned).toEqual([])

      yield* manager.load("probe")
      const busy = yield* Effect.fork(manager.execute("probe", "slow", { millis: 3000 }))
      yield* eventually(() => Effect.runSync(manager.get("probe")).running === 1)
      const refused = yield* Effect.flip(manager.load("other", { instanceId: "o2" }))
      expect(refused).toMatchObject({ _tag: "AdmissionRefused", instance: "o2", reason: { _tag: "BusyInstancesHoldMemory", busy: ["probe"] } })
      expect(spawned).toHaveLength(1)
      yield* Fiber.interrupt(busy)
    }).pipe(Effect.provide(managerLayer(ws, layer, { policy: "safety", memoryBudgetMiB: 150 })))
  })

  it.scopedLive("safety evicts the least recently used idle instance to admit a candidate that fits after it", () => {
    const { layer } = recordingSpawner()
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      const first = yield* manager.load("probe", { instanceId: "first" })
      yield* manager.load("other", { instanceId: "second" })
      yield* manager.execute("first", "config", {})
      const events = yield* manager.subscribe
      yield* manager.load("probe", { instanceId: "third" })
      const seen = yield* drained(events)
      expect(seen.filter((e) => e._tag === "evicted")).toMatchObject([{ instance: "second", cause: "admission", for: "third" }])
      expect((yield* manager.list).map((i) => i.id)).toEqual(["first", "third"])
      expect(isAlive(first.pid!)).toBe(true)
    }).pipe(Effect.provide(managerLayer(ws, layer, { policy: "safety", memoryBudgetMiB: 250 })))
  })

  it.scopedLive("warm workers are admitted like loads and count against the budget: an idle one is evicted first", () => {
    const { spawned, layer } = recordingSpawner()
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      yield* manager.prefetch("probe", 1)
      expect(yield* manager.warm("probe")).toBe(1)
      const refused = yield* Effect.flip(manager.prefetch("big", 1))
      expect(refused).toMatchObject({ _tag: "AdmissionRefused", reason: { _tag: "LargerThanBudget" } })
      const events = yield* manager.subscribe
      yield* manager.load("other")
      expect((yield* drained(events)).filter((e) => e._tag === "evicted")).toMatchObject([{ plugin: "probe", instance: expect.stringMatching(/^probe~warm~/), cause: "admission", for: "other" }])
      expect(yield* manager.warm("probe")).toBe(0)
      expect(isAlive(spawned[0]!)).toBe(false)
    }).pipe(Effect.provide(managerLayer(ws, layer, { policy: "safety", memoryBudgetMiB: 150 })))
  })

  it.scopedLive("queue waits with a block-reason event, then fails with AdmissionTimeout; the waiting load started no process", () => {
    const { spawned, layer } = recordingSpawner()
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      yield* manager.load("probe")
      const busy = yield* Effect.fork(manager.execute("probe", "slow", { millis: 20_000 }))
      yield* eventually(() => Effect.runSync(manager.get("probe")).running === 1)
      const events = yield* manager.subscribe

      const timedOut = yield* Effect.flip(manager.load("other"))
      expect(timedOut).toMatchObject({ _tag: "AdmissionTimeout", instance: "other", timeoutMillis: 300, reason: { _tag: "BusyInstancesHoldMemory", busy: ["probe"] } })
      expect(yield* drained(events)).toMatchObject([{ _tag: "admissionBlocked", instance: "other", reason: { busy: ["probe"] } }])
      expect(spawned).toHaveLength(1)
      yield* Fiber.interrupt(busy)
    }).pipe(Effect.provide(managerLayer(ws, layer, { policy: "queue", memoryBudgetMiB: 150, admissionTimeout: "300 millis" })))
  })

  it.scopedLive("queue: a waiting load proceeds when the instance holding the memory is unloaded", () => {
    const { spawned, layer } = recordingSpawner()
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      yield* manager.load("probe")
      const busy = yield* Effect.fork(Effect.either(manager.execute("probe", "slow", { millis: 20_000 })))
      yield* eventually(() => Effect.runSync(manager.get("probe")).running === 1)
      const events = yield* manager.subscribe
      const waiting = yield* Effect.fork(manager.load("other"))
      const blocked = yield* Queue.take(events)
      expect(blocked).toMatchObject({ _tag: "admissionBlocked", instance: "other" })
      expect(spawned).toHaveLength(1)
      yield* manager.unload("probe")
      const loaded = yield* Fiber.join(waiting)
      expect(loaded).toMatchObject({ id: "other" })
      expect(spawned).toEqual([expect.any(Number), loaded.pid])
      yield* Fiber.join(busy)
    }).pipe(Effect.provide(managerLayer(ws, layer, { policy: "queue", memoryBudgetMiB: 150, admissionTimeout: "60 seconds" })))
  })
})
