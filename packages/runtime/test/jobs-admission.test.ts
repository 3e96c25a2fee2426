import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Option } from "effect"
import { dirname } from "node:path"
import { JobId, type Job } from "@plinth/domain"
import { JobQueue } from "../src/jobs/JobQueue.js"
import { JobJournalMemory, makeMemoryJournalStore } from "../src/jobs/JobJournalMemory.js"
import { PluginManager } from "../src/manager/PluginManager.js"
import { managerWorkspace, probeSource, recordingSpawner, type ManagerWorkspace } from "./managerFixtures.js"
import { removeDir } from "./workerFixtures.js"
import { eventually, jobsPluginSource, queueLayer } from "./jobsFixtures.js"

/*
 * The manager's scheduling policy as a job sees it: under the queue policy
 * an instance that does not fit the memory budget waits to start, and the
 * jobs waiting for it say why.
 */

let ws: ManagerWorkspace
beforeAll(async () => {
  ws = await Effect.runPromise(
    managerWorkspace([
      { id: "jobs", source: jobsPluginSource, manifest: { resources: { memoryMiB: 100 } } },
      { id: "probe", source: probeSource(), manifest: { resources: { memoryMiB: 100 } } },
    ]),
  )
}, 60_000)
afterAll(() => removeDir(dirname(ws.root)))

describe("JobQueue and admission", () => {
  it.scopedLive("a recovered job whose instance waits for memory says so (the manager's block reason), then runs once the instance is admitted", () => {
    const store = makeMemoryJournalStore()
    const job: Job = {
      id: JobId.make("job-admission0"),
      instance: "jobs",
      action: "work",
      input: { millis: 5, tag: "admitted" },
      priority: 0,
      status: "pending",
      submittedAt: 1,
      progress: -1,
      retryCount: 0,
    }
    store.jobs.set(job.id, job)
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      const queue = yield* JobQueue
      yield* manager.load("probe")
      const busy = yield* Effect.fork(manager.execute("probe", "slow", { millis: 20_000 }))
      yield* eventually(Effect.map(manager.get("probe"), (m) => m.running === 1), "probe busy")
      const blockReason = Effect.map(queue.get(job.id), (j) => (Option.isSome(j) ? j.value.blockReason : undefined))
      yield* eventually(Effect.map(blockReason, (r) => r === "instance 'jobs' is not loaded; the job waits until it is"), "held")
      const loading = yield* Effect.fork(manager.load("jobs"))
      yield* eventually(Effect.map(blockReason, (r) => r?.startsWith("instance 'jobs' waits to start: it needs") === true), "the admission's reason")
      expect(yield* blockReason).toMatch(/busy instances \(probe\) hold/)
      expect((yield* queue.stats).running).toBe(0)
      yield* Fiber.interrupt(busy)
      yield* Fiber.join(loading)
      const done = yield* queue.wait(job.id)
      expect(done).toMatchObject({ status: "completed", result: { tag: "admitted" } })
      expect(done.blockReason).toBeUndefined()
    }).pipe(Effect.provide(queueLayer(ws, recordingSpawner().layer, {}, JobJournalMemory(store), { policy: "queue", memoryBudgetMiB: 150 })))
  })
})
