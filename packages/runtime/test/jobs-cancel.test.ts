import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { dirname } from "node:path"
import type { JobId } from "@plinth/domain"
import { JobQueue } from "../src/jobs/JobQueue.js"
import { PluginManager } from "../src/manager/PluginManager.js"
import { isAlive, managerWorkspace, recordingSpawner, type ManagerWorkspace } from "./managerFixtures.js"
import { removeDir } from "./workerFixtures.js"
import { collect, eventually, jobsPluginSource, queueLayer, summary } from "./jobsFixtures.js"

/*
 * Cancellation with real workers: a pending job, a running job whose plugin
 * honours interruption (Effect code sleeping), and one that never yields (a
 * busy loop), whose worker must be killed and replaced.
 */

let ws: ManagerWorkspace
beforeAll(async () => {
  ws = await Effect.runPromise(managerWorkspace([{ id: "jobs", source: jobsPluginSource }]))
}, 60_000)
afterAll(() => removeDir(dirname(ws.root)))

const CANCEL_TIMEOUT_MILLIS = 600
const running = (id: JobId) =>
  Effect.flatMap(JobQueue, (queue) => Effect.map(queue.get(id), (job) => Option.isSome(job) && job.value.status === "running"))

describe("JobQueue cancellation", () => {
  it.scopedLive("a pending job is cancelled at once with one pending → cancelled event and never runs; a finished or unknown job is not cancelled", () =>
    Effect.gen(function* () {
      const manager = yield* PluginManager
      const queue = yield* JobQueue
      yield* manager.load("jobs")
      const blocker = yield* queue.submit({ instance: "jobs", action: "work", input: { millis: 300 } })
      yield* eventually(running(blocker), "the blocker running")
      const waiting = yield* queue.submit({ instance: "jobs", action: "pid", input: {} })
      const seen = yield* collect({ _tag: "job", job: waiting })
      expect(yield* queue.cancel(waiting)).toBe(true)
      const cancelled = yield* queue.wait(waiting)
      expect(cancelled).toMatchObject({ status: "cancelled" })
      expect(cancelled.startedAt).toBeUndefined()
      yield* eventually(Effect.sync(() => seen.length > 0))
      yield* Effect.sleep("50 millis")
      expect(summary(seen)).toEqual(["pending>cancelled"])
      expect((yield* queue.pending).map((j) => j.id)).not.toContain(waiting)
      expect(yield* queue.cancel(waiting)).toBe(false)
      yield* queue.wait(blocker)
      expect(yield* queue.cancel(blocker)).toBe(false)
      expect(yield* queue.cancel("job-unknown" as JobId)).toBe(false)
      // The queue goes on: the next job runs.
      expect((yield* queue.wait(yield* queue.submit({ instance: "jobs", action: "pid", input: {} }))).status).toBe("completed")
      expect((yield* queue.history()).filter((j) => j.id === waiting).map((j) => j.status)).toEqual(["cancelled"])
      expect(yield* queue.stats).toMatchObject({ completed: 2, cancelled: 1 })
    }).pipe(Effect.provide(queueLayer(ws, recordingSpawner().layer, { cancelTimeout: CANCEL_TIMEOUT_MILLIS }))),
  )

  it.scopedLive("a running job whose plugin honours interruption ends cancelled after the cooperative phase alone, on the same worker", () =>
    Effect.gen(function* () {
      const manager = yield* PluginManager
      const queue = yield* JobQueue
      const { pid } = yield* manager.load("jobs")
      const id = yield* queue.submit({ instance: "jobs", action: "work", input: { millis: 3000 } })
      const seen = yield* collect({ _tag: "job", job: id })
      yield* eventually(Effect.map(queue.get(id), (j) => Option.isSome(j) && j.value.progress > 0), "progress")
      const asked = Date.now()
      expect(yield* queue.cancel(id)).toBe(true)
      const job = yield* queue.wait(id)
      expect(Date.now() - asked).toBeLessThan(CANCEL_TIMEOUT_MILLIS)
      expect(job).toMatchObject({ status: "cancelled", cancelPhase: "completed" })
      expect(job.cancelRequestedAt).toBeGreaterThanOrEqual(asked)
      expect(summary(seen).filter((s) => s.startsWith("phase:") || s.includes(">"))).toEqual(["pending>running", "phase:cooperative", "phase:completed", "running>cancelled"])
      // No reload: the same worker serves the next job.
      expect((yield* manager.get("jobs")).pid).toBe(pid)
      expect(yield* queue.wait(yield* queue.submit({ instance: "jobs", action: "pid", input: {} }))).toMatchObject({ status: "completed", result: pid })
    }).pipe(Effect.provide(queueLayer(ws, recordingSpawner().layer, { cancelTimeout: CANCEL_TIMEOUT_MILLIS }))),
  )

  it.scopedLive("a running job that ignores interruption goes cooperative → force → reloading → completed within the cancel timeout plus a margin; its worker is killed and replaced", () =>
    Effect.gen(function* () {
      const manager = yield* PluginManager
      const queue = yield* JobQueue
      const { pid } = yield* manager.load("jobs")
      const id = yield* queue.submit({ instance: "jobs", action: "spin", input: {} })
      const seen = yield* collect({ _tag: "job", job: id })
      yield* eventually(Effect.map(manager.get("jobs"), (m) => m.running === 1), "the call on the worker")
      const asked = Date.now()
      expect(yield* queue.cancel(id)).toBe(true)
      // Asked twice: the cancellation under way is not started again.
      expect(yield* queue.cancel(id)).toBe(false)
      const job = yield* queue.wait(id)
      const took = Date.now() - asked
      expect(took).toBeGreaterThanOrEqual(CANCEL_TIMEOUT_MILLIS)
      expect(took).toBeLessThan(CANCEL_TIMEOUT_MILLIS + 3000)
      expect(job).toMatchObject({ status: "cancelled", cancelPhase: "completed" })
      expect(summary(seen).filter((s) => s.startsWith("phase:") || s.includes(">"))).toEqual([
        "pending>running",
        "phase:cooperative",
        "phase:force",
        "phase:reloading",
        "phase:completed",
        "running>cancelled",
      ])
      expect(isAlive(pid!)).toBe(false)
      const fresh = (yield* manager.get("jobs")).pid
      expect(fresh).not.toBe(pid)
      expect(yield* queue.wait(yield* queue.submit({ instance: "jobs", action: "pid", input: {} }))).toMatchObject({ status: "completed", result: fresh })
      // The instance's own grace (100 ms) did not cut the cancel timeout short: the queue's call carries its own.
    }).pipe(Effect.provide(queueLayer(ws, recordingSpawner().layer, { cancelTimeout: CANCEL_TIMEOUT_MILLIS }, undefined, { interruptGrace: "100 millis" }))),
  )

  it.scopedLive("the manager's retries after eviction show on the job as retryStarted by eviction, counted in its retries", () =>
    Effect.gen(function* () {
      const manager = yield* PluginManager
      const queue = yield* JobQueue
      yield* manager.load("jobs")
      const id = yield* queue.submit({ instance: "jobs", action: "short", input: {} })
      const seen = yield* collect({ _tag: "job", job: id })
      const job = yield* queue.wait(id)
      expect(job).toMatchObject({ status: "failed", retryCount: 1, error: { category: "resource", tag: "PluginResourceError" } })
      yield* eventually(Effect.sync(() => seen.some((e) => e._tag === "stateChanged" && e.to === "failed")))
      expect(seen.filter((e) => e._tag === "retryStarted").map((e) => (e._tag === "retryStarted" ? [e.attempt, e.by, e.failure] : []))).toEqual([
        [2, "eviction", "PluginResourceError"],
      ])
    }).pipe(Effect.provide(queueLayer(ws, recordingSpawner().layer, {}, undefined, { maxRetries: 1 }))),
  )
})
