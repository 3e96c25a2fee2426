import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Option, Schedule, Stream } from "effect"
import { dirname } from "node:path"
import type { JobEvent, JobId } from "@plinth/domain"
import { JobQueue } from "../src/jobs/JobQueue.js"
import { PluginManager } from "../src/manager/PluginManager.js"
import { managerWorkspace, probeSource, recordingSpawner, type ManagerWorkspace } from "./managerFixtures.js"
import { removeDir } from "./workerFixtures.js"
import { collect, eventually, jobsPluginSource, queueLayer, summary } from "./jobsFixtures.js"

let ws: ManagerWorkspace
beforeAll(async () => {
  ws = await Effect.runPromise(
    managerWorkspace([
      { id: "jobs", source: jobsPluginSource },
      { id: "capped", source: jobsPluginSource, manifest: { resources: { maxConcurrent: 1 } } },
      { id: "probe", source: probeSource() },
    ]),
  )
}, 60_000)
afterAll(() => removeDir(dirname(ws.root)))

const work = (millis: number, tag?: string) => ({ instance: "jobs", action: "work", input: { millis, ...(tag !== undefined ? { tag } : {}) } })

describe("JobQueue: order, run, wait", () => {
  it.scopedLive("priorities 0, 10, 10, 5 submitted while the queue is busy run as the first 10, the second 10, 5, then 0; reorder moves a pending job", () =>
    Effect.gen(function* () {
      const manager = yield* PluginManager
      const queue = yield* JobQueue
      yield* manager.load("jobs")
      const started = yield* collect({ _tag: "all" })
      const blocker = yield* queue.submit(work(300, "blocker"))
      yield* eventually(Effect.map(queue.running, (r) => r.length === 1), "the blocker running")
      const a = yield* queue.submit({ ...work(10, "p0"), priority: 0 })
      const b = yield* queue.submit({ ...work(10, "p10-first"), priority: 10 })
      const c = yield* queue.submit({ ...work(10, "p10-second"), priority: 10 })
      const d = yield* queue.submit({ ...work(10, "p5"), priority: 5 })
      const e = yield* queue.submit({ ...work(10, "moved"), priority: 1 })
      expect((yield* queue.pending).map((j) => j.id)).toEqual([b, c, d, e, a])
      expect(yield* queue.reorder(e, 7)).toBe(true)
      expect((yield* queue.pending).map((j) => j.id)).toEqual([b, c, e, d, a])
      // Only a pending job can be reordered.
      expect(yield* queue.reorder(blocker, 100)).toBe(false)
      for (const id of [blocker, a, b, c, d, e]) expect((yield* queue.wait(id)).status).toBe("completed")
      const runOrder = started.filter((ev): ev is Extract<JobEvent, { _tag: "stateChanged" }> => ev._tag === "stateChanged" && ev.to === "running").map((ev) => ev.job)
      expect(runOrder).toEqual([blocker, b, c, e, d, a])
      expect(started.find((ev) => ev._tag === "priorityChanged")).toMatchObject({ job: e, from: 1, to: 7 })
      const done = yield* queue.get(b)
      expect(Option.getOrThrow(done)).toMatchObject({ status: "completed", result: { tag: "p10-first" }, progress: 1, retryCount: 0 })
      // History: newest first.
      expect((yield* queue.history()).slice(0, 6).map((j) => j.id)).toEqual([a, d, e, c, b, blocker])
      const stats = yield* queue.stats
      expect(stats).toMatchObject({ pending: 0, running: 0, completed: 6, failed: 0, cancelled: 0 })
      expect(stats.throughput).toBeGreaterThan(0)
    }).pipe(Effect.provide(queueLayer(ws, recordingSpawner().layer))),
  )

  it.scopedLive("submit refuses, in one line, an unknown instance, an undeclared action, a bad priority or timeout, and a disabled instance", () =>
    Effect.gen(function* () {
      const manager = yield* PluginManager
      const queue = yield* JobQueue
      yield* manager.load("jobs")
      const refused = (request: Parameters<typeof queue.submit>[0]) => Effect.map(Effect.flip(queue.submit(request)), (e) => e.message)
      expect(yield* refused({ instance: "nope", action: "work", input: {} })).toBe("job refused: instance 'nope' is not loaded; load it first (loaded: jobs)")
      expect(yield* refused({ instance: "jobs", action: "nope", input: {} })).toMatch(/^job refused: instance 'jobs' \(plugin jobs\) declares no action 'nope'; it declares: fail, flaky, pid, same, short, spin, work$/)
      expect(yield* refused({ ...work(1), priority: 1.5 })).toMatch(/^job refused: priority must be a whole number/)
      expect(yield* refused({ ...work(1), priority: Number.POSITIVE_INFINITY })).toMatch(/^job refused: priority must be a whole number/)
      expect(yield* refused({ ...work(1), timeout: -5 })).toMatch(/^job refused: timeout must be a finite duration above zero/)
      expect(yield* refused({ ...work(1), timeout: "soon" as never })).toMatch(/^job refused: timeout must be a duration/)
      expect(yield* refused({ instance: "jobs", action: "work", input: { millis: 1, when: new Date(0) } })).toMatch(/^job refused: the input is not a JSON value: .*at \$\.when$/)
      yield* manager.disable("jobs")
      expect(yield* refused(work(1))).toBe("job refused: instance 'jobs' is disabled; enable it first")
      yield* manager.enable("jobs")
      expect(yield* queue.stats).toMatchObject({ pending: 0, running: 0, completed: 0 })
    }).pipe(Effect.provide(queueLayer(ws, recordingSpawner().layer))),
  )

  it.scopedLive("an idempotency key already known returns the first job's id; progress events only when the progress changes", () =>
    Effect.gen(function* () {
      const manager = yield* PluginManager
      const queue = yield* JobQueue
      yield* manager.load("jobs")
      const first = yield* queue.submit({ ...work(20, "keyed"), idempotencyKey: "order-42" })
      const second = yield* queue.submit({ ...work(20, "again"), idempotencyKey: "order-42" })
      expect(second).toBe(first)
      yield* queue.wait(first)
      // Still known once finished.
      expect(yield* queue.submit({ ...work(20), idempotencyKey: "order-42" })).toBe(first)
      expect((yield* queue.history()).filter((j) => j.id === first)).toHaveLength(1)

      const id = yield* queue.submit({ instance: "jobs", action: "same", input: {} })
      const events = yield* Stream.runCollect(queue.events(id))
      const progress = Chunk.toArray(events).filter((e) => e._tag === "progressChanged")
      expect(progress.map((e) => (e._tag === "progressChanged" ? [e.progress, e.message] : []))).toEqual([
        [0.5, "half"],
        [0.5, "still half"],
        [1, undefined],
      ])
      // The job's own stream ended after the event that finished it.
      expect(summary(Chunk.toArray(events)).at(-1)).toBe("running>completed")
    }).pipe(Effect.provide(queueLayer(ws, recordingSpawner().layer))),
  )

  it.scopedLive("transient failures are retried by the queue (its schedule, or the plugin's retryAfterSeconds) with retry events and a retry count; others fail at once with a JobError", () =>
    Effect.gen(function* () {
      const manager = yield* PluginManager
      const queue = yield* JobQueue
      yield* manager.load("jobs")
      const flaky = yield* queue.submit({ instance: "jobs", action: "flaky", input: { key: "a", failures: 2 } })
      const seen = yield* collect({ _tag: "job", job: flaky })
      const ok = yield* queue.wait(flaky)
      expect(ok).toMatchObject({ status: "completed", result: 3, retryCount: 2 })
      yield* eventually(Effect.sync(() => seen.some((e) => e._tag === "stateChanged" && e.to === "completed")))
      expect(seen.filter((e) => e._tag === "retryStarted").map((e) => (e._tag === "retryStarted" ? [e.attempt, e.by, e.failure] : []))).toEqual([
        [2, "queue", "PluginTransientError: flaky 1"],
        [3, "queue", "PluginTransientError: flaky 2"],
      ])

      // Beyond the retries: failed, with the last failure.
      const exhausted = yield* queue.wait(yield* queue.submit({ instance: "jobs", action: "flaky", input: { key: "b", failures: 5 } }))
      expect(exhausted).toMatchObject({ status: "failed", retryCount: 2, error: { category: "transient", tag: "PluginTransientError", message: "flaky 3" } })

      const input = yield* queue.wait(yield* queue.submit({ instance: "jobs", action: "fail", input: { category: "input" } }))
      expect(input).toMatchObject({ status: "failed", retryCount: 0, error: { category: "input", tag: "PluginInputError", plugin: "jobs", instance: "jobs" } })
      const fatal = yield* queue.wait(yield* queue.submit({ instance: "jobs", action: "fail", input: { category: "fatal" } }))
      expect(fatal).toMatchObject({ status: "failed", retryCount: 0, error: { category: "fatal", retriable: false } })

      // retryAfterSeconds from the plugin sets the delay.
      const later = yield* queue.submit({ instance: "jobs", action: "fail", input: { category: "transient", retryAfterSeconds: 0.2 } })
      const laterEvents = yield* collect({ _tag: "job", job: later })
      const laterJob = yield* queue.wait(later)
      expect(laterJob).toMatchObject({ status: "failed", retryCount: 2 })
      yield* eventually(Effect.sync(() => laterEvents.some((e) => e._tag === "stateChanged" && e.to === "failed")))
      expect(laterEvents.filter((e) => e._tag === "retryStarted").map((e) => (e._tag === "retryStarted" ? e.delayMillis : -1))).toEqual([200, 200])
      expect(yield* queue.stats).toMatchObject({ completed: 1, failed: 4 })
      // Disabled after it was queued: the manager's refusal keeps its own tag and message.
      const blocker = yield* queue.submit(work(200))
      yield* eventually(Effect.map(queue.running, (r) => r.length === 1), "the blocker running")
      const late = yield* queue.submit(work(1))
      yield* manager.disable("jobs")
      expect((yield* queue.wait(late)).error).toMatchObject({ tag: "PluginDisabled", category: "fatal", message: expect.stringMatching(/^instance 'jobs' of 'jobs' is disabled/) })
      expect((yield* queue.wait(blocker)).status).toBe("completed")
    }).pipe(
      Effect.provide(queueLayer(ws, recordingSpawner().layer, { retry: { maxRetries: 2, schedule: Schedule.spaced("20 millis") } }, undefined, { breakerThreshold: 100 })),
    ),
  )

  it.scopedLive("with concurrency 2 on an instance capped at 1 call, the second job says why it waits, and the reason clears when it starts", () =>
    Effect.gen(function* () {
      const manager = yield* PluginManager
      const queue = yield* JobQueue
      yield* manager.load("capped")
      const first = yield* queue.submit({ instance: "capped", action: "work", input: { millis: 400 } })
      yield* eventually(Effect.map(queue.running, (r) => r.length === 1), "the first job running")
      yield* eventually(Effect.map(manager.get("capped"), (m) => m.running === 1), "the call in its slot")
      const second = yield* queue.submit({ instance: "capped", action: "work", input: { millis: 10 } })
      const seen = yield* collect({ _tag: "job", job: second })
      yield* eventually(Effect.map(queue.get(second), (j) => Option.isSome(j) && j.value.blockReason !== undefined), "a block reason")
      expect(Option.getOrThrow(yield* queue.get(second)).blockReason).toBe("instance 'capped' is running 1 of its 1 calls at once; the job waits for a slot")
      yield* queue.wait(first)
      const done = yield* queue.wait(second)
      expect(done.status).toBe("completed")
      expect(done.blockReason).toBeUndefined()
      const reasons = seen.filter((e) => e._tag === "blockReasonChanged").map((e) => (e._tag === "blockReasonChanged" ? e.reason : "?"))
      expect(reasons).toEqual(["instance 'capped' is running 1 of its 1 calls at once; the job waits for a slot", undefined])
    }).pipe(Effect.provide(queueLayer(ws, recordingSpawner().layer, { concurrency: 2 }))),
  )

  it.scopedLive("concurrency N runs N jobs at once", () =>
    Effect.gen(function* () {
      const manager = yield* PluginManager
      const queue = yield* JobQueue
      yield* manager.load("probe")
      const ids: Array<JobId> = []
      for (let i = 0; i < 6; i++) ids.push(yield* queue.submit({ instance: "probe", action: "slow", input: { millis: 150 } }))
      yield* eventually(Effect.map(queue.running, (r) => r.length === 3), "three running")
      expect((yield* queue.stats).pending).toBe(3)
      const results = yield* Effect.forEach(ids, (id) => queue.wait(id))
      expect(Math.max(...results.map((j) => (j.result as { most: number }).most))).toBe(3)
    }).pipe(Effect.provide(queueLayer(ws, recordingSpawner().layer, { concurrency: 3 }))),
  )
})

describe("JobQueue events", () => {
  it.scopedLive("a subscriber that never reads holds 100 of 150 events and counts 50 dropped, while a reading one gets all 150; one job's subscribers hear nothing of another", () =>
    Effect.gen(function* () {
      const manager = yield* PluginManager
      const queue = yield* JobQueue
      yield* manager.load("jobs")
      // A long job keeps the rest pending: their submissions are the 150 events.
      const blocker = yield* queue.submit(work(1000))
      yield* eventually(Effect.map(queue.running, (r) => r.length === 1), "the blocker running")
      const idle = yield* queue.subscribe({ _tag: "all" })
      const reader = yield* queue.subscribe({ _tag: "all" })
      const reading = yield* Effect.fork(Stream.runCollect(Stream.take(reader.events, 150)))
      const ids: Array<JobId> = []
      for (let i = 0; i < 150; i++) {
        ids.push(yield* queue.submit({ instance: "jobs", action: "pid", input: {} }))
        yield* Effect.yieldNow()
      }
      const got = Chunk.toArray(yield* Fiber.join(reading))
      expect(got).toHaveLength(150)
      expect(got.every((e) => e._tag === "submitted")).toBe(true)
      expect(yield* reader.dropped).toBe(0)
      expect(yield* idle.dropped).toBe(50)
      const held = Chunk.toArray(yield* Stream.runCollect(Stream.take(idle.events, 100)))
      expect(held.map((e) => e.job)).toEqual(ids.slice(0, 100))
      yield* queue.wait(blocker)

      const [x, y] = [ids[0]!, ids[1]!]
      const onX = yield* collect({ _tag: "job", job: x })
      const onY = yield* collect({ _tag: "job", job: y })
      yield* queue.wait(ids.at(-1)!)
      yield* eventually(Effect.sync(() => onY.some((e) => e._tag === "stateChanged" && e.to === "completed")))
      expect(onX.length).toBeGreaterThan(0)
      expect(onX.every((e) => e.job === x)).toBe(true)
      expect(onY.every((e) => e.job === y)).toBe(true)
    }).pipe(Effect.provide(queueLayer(ws, recordingSpawner().layer))),
  )

  it.scopedLive("a subscription ends when its scope closes; a finished job's event stream ends at once", () =>
    Effect.gen(function* () {
      const manager = yield* PluginManager
      const queue = yield* JobQueue
      yield* manager.load("jobs")
      const reading = yield* Effect.scoped(
        Effect.gen(function* () {
          const subscription = yield* queue.subscribe({ _tag: "all" })
          return yield* Effect.forkDaemon(Stream.runCollect(subscription.events))
        }),
      )
      expect((yield* Fiber.await(reading))._tag).toBe("Success")
      const id = yield* queue.submit({ instance: "jobs", action: "pid", input: {} })
      yield* queue.wait(id)
      expect(Chunk.toArray(yield* Stream.runCollect(queue.events(id)))).toEqual([])
    }).pipe(Effect.provide(queueLayer(ws, recordingSpawner().layer))),
  )

  it.live("closing the queue ends every subscription's stream", () =>
    Effect.gen(function* () {
      const ended = yield* Effect.scoped(
        Effect.gen(function* () {
          const queue = yield* JobQueue
          const fiber = yield* Effect.forkDaemon(Stream.runCollect(queue.allEvents))
          yield* Effect.sleep("20 millis")
          return fiber
        }).pipe(Effect.provide(queueLayer(ws, recordingSpawner().layer))),
      )
      const exit = yield* Fiber.await(ended)
      expect(exit._tag).toBe("Success")
    }),
  )
})
