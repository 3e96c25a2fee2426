import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { PluginManager } from "../src/manager/PluginManager.js"
import { dirname } from "node:path"
import { JobId, SequenceId, type Job, type JobEvent, type JobSequence } from "@plinth/domain"
import { JobQueue } from "../src/jobs/JobQueue.js"
import { makeMemoryJournal, makeMemoryJournalStore, JobJournalMemory } from "../src/jobs/JobJournalMemory.js"
import { JobJournal } from "../src/stores/JobJournal.js"
import { StoreUnavailable } from "../src/stores/StoreErrors.js"
import { managerWorkspace, recordingSpawner, type ManagerWorkspace } from "./managerFixtures.js"
import { removeDir } from "./workerFixtures.js"
import { collect, eventually, jobsPluginSource, loadedQueueLayer, queueLayer } from "./jobsFixtures.js"

/*
 * The queue's journal wiring, over the in-memory JobJournal (the SQLite one
 * keeps the same contract): what is written before the queue acts, what a
 * restart recovers, what a clean shutdown leaves.
 */

let ws: ManagerWorkspace
beforeAll(async () => {
  ws = await Effect.runPromise(managerWorkspace([{ id: "jobs", source: jobsPluginSource }]))
}, 60_000)
afterAll(() => removeDir(dirname(ws.root)))

let counter = 0
/** A job as the journal would hold it after a crash. */
const journaled = (status: Job["status"], tag: string, extra: Partial<Job> = {}): Job => ({
  id: JobId.make(`job-journaled${(counter++).toString().padStart(4, "0")}`),
  instance: "jobs",
  action: "work",
  input: { millis: 10, tag },
  priority: 0,
  status,
  submittedAt: 1_000 + counter,
  progress: -1,
  retryCount: 0,
  ...(status === "running" ? { startedAt: 2_000 } : {}),
  ...extra,
})

const statusesOf = (writes: ReadonlyArray<Job>, id: string) => writes.filter((j) => j.id === id).map((j) => j.status)

describe("JobQueue journal", () => {
  it.scopedLive("a job whose pending record the journal cannot write is refused, not queued: nothing runs that a crash would then lose", () => {
    const store = makeMemoryJournalStore()
    const memory = makeMemoryJournal(store)
    let failing = true
    const unwritable = Layer.succeed(
      JobJournal,
      JobJournal.of({
        ...memory,
        write: (jobs) => (failing ? Effect.fail(new StoreUnavailable({ path: "/data/plinth.db", reason: "disk I/O error" })) : memory.write(jobs)),
      }),
    )
    return Effect.gen(function* () {
      const queue = yield* JobQueue
      const refused = yield* Effect.flip(queue.submit({ instance: "jobs", action: "work", input: { millis: 10 } }))
      expect(refused._tag).toBe("JobRefused")
      expect(refused.message).toContain("the job journal could not be written, so nothing was queued")
      expect(refused.message).toContain("disk I/O error")
      expect(yield* queue.pending).toEqual([])
      expect((yield* queue.stats).pending).toBe(0)
      failing = false
      const id = yield* queue.submit({ instance: "jobs", action: "work", input: { millis: 10 } })
      expect((yield* queue.wait(id)).status).toBe("completed")
    }).pipe(Effect.provide(loadedQueueLayer(ws, recordingSpawner().layer, ["jobs"], {}, unwritable)))
  })

  it.scopedLive("a job whose running record cannot be written does not start, unless its idempotency key says a re-run would be safe", () => {
    const store = makeMemoryJournalStore()
    const memory = makeMemoryJournal(store)
    const failingRunning = Layer.succeed(
      JobJournal,
      JobJournal.of({
        ...memory,
        write: (jobs) =>
          jobs.some((j) => j.status === "running")
            ? Effect.fail(new StoreUnavailable({ path: "/data/plinth.db", reason: "disk I/O error" }))
            : memory.write(jobs),
      }),
    )
    return Effect.gen(function* () {
      const queue = yield* JobQueue
      const events = yield* collect({ _tag: "all" })
      const plain = yield* queue.wait(yield* queue.submit({ instance: "jobs", action: "work", input: { millis: 10, tag: "plain" } }))
      expect(plain.status).toBe("failed")
      expect(plain.error?.tag).toBe("StoreUnavailable")
      expect(plain.error?.message).toContain("disk I/O error")
      // It never reached the worker: no progress was reported for it.
      expect(events.some((e) => e._tag === "progressChanged" && e.job === plain.id)).toBe(false)
      const keyed = yield* queue.wait(yield* queue.submit({ instance: "jobs", action: "work", input: { millis: 10, tag: "keyed" }, idempotencyKey: "k-1" }))
      expect(keyed.status).toBe("completed")
    }).pipe(Effect.provide(loadedQueueLayer(ws, recordingSpawner().layer, ["jobs"], {}, failingRunning)))
  })

  it.live("a journal that cannot be read stops the queue from starting, rather than starting empty and dropping what it held", () => {
    const unreadable = Layer.succeed(
      JobJournal,
      JobJournal.of({
        ...makeMemoryJournal(makeMemoryJournalStore()),
        recover: () => Effect.fail(new StoreUnavailable({ path: "/data/plinth.db", reason: "file is not a database" })),
      }),
    )
    return Effect.gen(function* () {
      const started = yield* Effect.exit(Effect.scoped(Layer.build(loadedQueueLayer(ws, recordingSpawner().layer, ["jobs"], {}, unreadable))))
      expect(started._tag).toBe("Failure")
      expect(String(started)).toContain("file is not a database")
    })
  })

  it.scopedLive("submit returns once the pending record is written; a job is journaled running before its call starts, and its end after", () => {
    const store = makeMemoryJournalStore()
    const memory = makeMemoryJournal(store)
    const writes: Array<Job> = []
    let runningWrittenAt = 0
    // A slow journal: a call that started before its running record was written would report progress first.
    const slow = Layer.succeed(
      JobJournal,
      JobJournal.of({
        ...memory,
        write: (jobs) =>
          Effect.gen(function* () {
            if (jobs.some((j) => j.status === "running")) yield* Effect.sleep("200 millis")
            yield* memory.write(jobs)
            writes.push(...jobs)
            if (jobs.some((j) => j.status === "running")) runningWrittenAt = Date.now()
          }),
      }),
    )
    return Effect.gen(function* () {
      const queue = yield* JobQueue
      const events: Array<JobEvent> = yield* collect({ _tag: "all" })
      const id = yield* queue.submit({ instance: "jobs", action: "work", input: { millis: 100 } })
      expect(store.jobs.get(id)?.status).toBe("pending")
      const done = yield* queue.wait(id)
      expect(statusesOf(writes, id)).toEqual(["pending", "running", "completed"])
      expect(store.jobs.get(id)).toEqual(done)
      yield* eventually(Effect.sync(() => events.some((e) => e._tag === "stateChanged" && e.to === "completed")))
      const firstProgress = events.find((e) => e._tag === "progressChanged")!
      expect(firstProgress.at).toBeGreaterThanOrEqual(runningWrittenAt)
    }).pipe(Effect.provide(loadedQueueLayer(ws, recordingSpawner().layer, ["jobs"], {}, slow)))
  })

  it.scopedLive("a job's end is journaled before its waiter hears of it, while its lane already starts the next job", () => {
    const store = makeMemoryJournalStore()
    const memory = makeMemoryJournal(store)
    const log: Array<{ readonly id: string; readonly status: string; readonly called: number; returned: number }> = []
    // Ends take 300 ms to journal.
    const slowEnds = Layer.succeed(
      JobJournal,
      JobJournal.of({
        ...memory,
        write: (jobs) =>
          Effect.gen(function* () {
            const records = jobs.map((j) => ({ id: j.id, status: j.status, called: Date.now(), returned: 0 }))
            log.push(...records)
            if (jobs.some((j) => j.status === "completed")) yield* Effect.sleep("300 millis")
            yield* memory.write(jobs)
            for (const r of records) r.returned = Date.now()
          }),
      }),
    )
    return Effect.gen(function* () {
      const queue = yield* JobQueue
      const a = yield* queue.submit({ instance: "jobs", action: "work", input: { millis: 10, tag: "a" } })
      const b = yield* queue.submit({ instance: "jobs", action: "work", input: { millis: 10, tag: "b" } })
      const doneA = yield* queue.wait(a)
      const heardAt = Date.now()
      const aEnd = log.find((r) => r.id === a && r.status === "completed")!
      const bRunning = log.find((r) => r.id === b && r.status === "running")!
      expect(heardAt).toBeGreaterThanOrEqual(aEnd.returned)
      expect(store.jobs.get(a)).toEqual(doneA)
      // B was journaled running (and so started) while A's end was still being written.
      expect(bRunning.called).toBeLessThan(aEnd.returned)
      expect((yield* queue.wait(b)).status).toBe("completed")
    }).pipe(Effect.provide(loadedQueueLayer(ws, recordingSpawner().layer, ["jobs"], {}, slowEnds)))
  })

  it.scopedLive("a lane writes a job's end and its next job's running record in one write; the last job's end is written alone, and every waiter hears", () => {
    const store = makeMemoryJournalStore()
    const memory = makeMemoryJournal(store)
    const writes: Array<ReadonlyArray<string>> = []
    const recording = Layer.succeed(
      JobJournal,
      JobJournal.of({
        ...memory,
        write: (jobs) => Effect.zipRight(Effect.sync(() => writes.push(jobs.map((j) => `${j.input && (j.input as { tag: string }).tag}:${j.status}`))), memory.write(jobs)),
      }),
    )
    return Effect.gen(function* () {
      const queue = yield* JobQueue
      const ids = yield* Effect.forEach(["a", "b", "c"], (tag) => queue.submit({ instance: "jobs", action: "work", input: { millis: 20, tag } }))
      const done = yield* Effect.forEach(ids, (id) => queue.wait(id))
      expect(done.map((j) => j.status)).toEqual(["completed", "completed", "completed"])
      for (const job of done) expect(store.jobs.get(job.id)).toEqual(job)
      const afterSubmits = writes.slice(3)
      expect(afterSubmits).toEqual([["a:running"], ["a:completed", "b:running"], ["b:completed", "c:running"], ["c:completed"]])
    }).pipe(Effect.provide(loadedQueueLayer(ws, recordingSpawner().layer, ["jobs"], {}, recording)))
  })

  it.scopedLive("after a crash: pending jobs run again in order, a running job with an idempotency key is re-queued, one without ends failed JobInterrupted", () => {
    const store = makeMemoryJournalStore()
    const p1 = journaled("pending", "p1")
    const r1 = journaled("running", "r1", { idempotencyKey: "safe-to-repeat" })
    const p2 = journaled("pending", "p2", { priority: 5 })
    const r2 = journaled("running", "r2")
    const p3 = journaled("pending", "p3")
    for (const job of [p1, r1, p2, r2, p3]) store.jobs.set(job.id, job)
    return Effect.gen(function* () {
      const queue = yield* JobQueue
      const interrupted = yield* queue.wait(r2.id)
      expect(interrupted).toMatchObject({
        status: "failed",
        error: { tag: "JobInterrupted", category: "transient", retriable: false, instance: "jobs", plugin: "jobs" },
      })
      expect(interrupted.error!.message).toBe(`job ${r2.id} (jobs work) was running when its host stopped; it was not run again because it has no idempotency key`)
      const finished = yield* Effect.forEach([p1, r1, p2, p3], (j) => queue.wait(j.id))
      expect(finished.map((j) => [j.status, (j.result as { tag: string }).tag])).toEqual([
        ["completed", "p1"],
        ["completed", "r1"],
        ["completed", "p2"],
        ["completed", "p3"],
      ])
      // Run order: priority first, then the order they were first submitted in.
      const ranInOrder = [...finished].sort((a, b) => a.startedAt! - b.startedAt!).map((j) => (j.result as { tag: string }).tag)
      expect(ranInOrder).toEqual(["p2", "p1", "r1", "p3"])
      for (const job of [p1, r1, p2, r2, p3]) expect(store.jobs.get(job.id)?.status).not.toMatch(/pending|running/)
      // The key is known after the restart: a second submission gets the same job.
      expect(yield* queue.submit({ instance: "jobs", action: "work", input: { millis: 1 }, idempotencyKey: "safe-to-repeat" })).toBe(r1.id)
    }).pipe(Effect.provide(loadedQueueLayer(ws, recordingSpawner().layer, ["jobs"], {}, JobJournalMemory(store))))
  })

  it.scopedLive("recovered jobs whose instance is not loaded yet stay pending, in order, saying why, and run once it is loaded", () => {
    const store = makeMemoryJournalStore()
    const jobs = [journaled("pending", "a"), journaled("pending", "b", { priority: 2 }), journaled("running", "c", { idempotencyKey: "c" })]
    for (const job of jobs) store.jobs.set(job.id, job)
    return Effect.gen(function* () {
      const queue = yield* JobQueue
      const manager = yield* PluginManager
      yield* eventually(Effect.map(queue.pending, (p) => p.every((j) => j.blockReason !== undefined)), "held")
      const pending = yield* queue.pending
      expect(pending.map((j) => (j.input as { tag: string }).tag)).toEqual(["b", "a", "c"])
      expect(pending[0]!.blockReason).toBe("instance 'jobs' is not loaded; the job waits until it is")
      expect(yield* queue.stats).toMatchObject({ pending: 3, running: 0, failed: 0 })
      yield* Effect.sleep("100 millis")
      expect((yield* queue.pending).length).toBe(3)
      yield* manager.load("jobs")
      const done = yield* Effect.forEach(jobs, (j) => queue.wait(j.id))
      expect(done.map((j) => j.status)).toEqual(["completed", "completed", "completed"])
      expect([...done].sort((x, y) => x.startedAt! - y.startedAt!).map((j) => (j.result as { tag: string }).tag)).toEqual(["b", "a", "c"])
    }).pipe(Effect.provide(queueLayer(ws, recordingSpawner().layer, {}, JobJournalMemory(store))))
  })

  it.scopedLive("after a crash, unfinished sequences go on: from their pending step's job, or by queuing the step that had no job yet", () => {
    const store = makeMemoryJournalStore()
    const step = (tag: string) => ({ instance: "jobs", action: "work", input: { millis: 5, tag } })
    const s1: JobSequence = { id: SequenceId.make("seq-one"), mode: "failFast", priority: 0, steps: [step("a"), step("b")], status: "running", current: 0, results: [], submittedAt: 1 }
    const member = journaled("pending", "a", { input: step("a").input, sequence: { id: s1.id, index: 0 } })
    const s2: JobSequence = {
      id: SequenceId.make("seq-two"),
      mode: "bestEffort",
      priority: 0,
      steps: [step("x"), step("y")],
      status: "running",
      current: 1,
      results: [{ index: 0, job: JobId.make("job-gone"), status: "failed" }],
      submittedAt: 2,
    }
    store.jobs.set(member.id, member)
    store.sequences.set(s1.id, s1)
    store.sequences.set(s2.id, s2)
    return Effect.gen(function* () {
      const queue = yield* JobQueue
      const one = yield* queue.waitSequence(s1.id)
      expect(one.status).toBe("completed")
      expect(one.results.map((r) => [r.status, (r.result as { tag: string }).tag])).toEqual([
        ["completed", "a"],
        ["completed", "b"],
      ])
      expect(one.results[0]!.job).toBe(member.id)
      const two = yield* queue.waitSequence(s2.id)
      expect(two).toMatchObject({ status: "completed" })
      expect(two.results.map((r) => r.status)).toEqual(["failed", "completed"])
      expect(store.sequences.get(s1.id)).toEqual(one)
      expect(store.sequences.get(s2.id)).toEqual(two)
    }).pipe(Effect.provide(loadedQueueLayer(ws, recordingSpawner().layer, ["jobs"], {}, JobJournalMemory(store))))
  })

  it.scopedLive("a waiter on a job that has left the history still resolves: from the queue's archive, or from the journal", () => {
    const store = makeMemoryJournalStore()
    const old = { ...journaled("completed", "old"), finishedAt: 10, result: { tag: "old" } }
    const newer = [1, 2, 3].map((n) => ({ ...journaled("completed", `n${n}`), finishedAt: 100 + n }))
    for (const job of [old, ...newer]) store.jobs.set(job.id, job)
    return Effect.gen(function* () {
      const queue = yield* JobQueue
      // Recovered history: the newest two only.
      expect((yield* queue.history()).map((j) => j.id)).toEqual([newer[2]!.id, newer[1]!.id])
      expect(yield* queue.wait(old.id)).toEqual(old)
      expect(Option.getOrThrow(yield* queue.get(old.id)).status).toBe("completed")
      const ids = yield* Effect.forEach([1, 2, 3, 4], (n) => queue.submit({ instance: "jobs", action: "work", input: { millis: 1, tag: `t${n}` } }))
      yield* Effect.forEach(ids, (id) => queue.wait(id))
      expect((yield* queue.history()).map((j) => j.id)).toEqual([ids[3], ids[2]])
      expect(yield* queue.wait(ids[0]!)).toMatchObject({ status: "completed", result: { tag: "t1" } })
      expect((yield* Effect.flip(queue.wait("job-neverseen" as JobId))).message).toBe("no job job-neverseen: check the id with 'plinth jobs list'")
    }).pipe(Effect.provide(loadedQueueLayer(ws, recordingSpawner().layer, ["jobs"], { maxHistory: 2 }, JobJournalMemory(store))))
  })

  it.live("a clean shutdown re-queues a running job with a key, fails one without (JobInterrupted), keeps pending ones pending; the next start runs them", () =>
    Effect.gen(function* () {
      const store = makeMemoryJournalStore()
      const journal = JobJournalMemory(store)
      const ids = yield* Effect.scoped(
        Effect.gen(function* () {
          const queue = yield* JobQueue
          const keyed = yield* queue.submit({ instance: "jobs", action: "work", input: { millis: 300, tag: "keyed" }, idempotencyKey: "k-1" })
          const plain = yield* queue.submit({ instance: "jobs", action: "work", input: { millis: 5000, tag: "plain" } })
          const waiting = yield* queue.submit({ instance: "jobs", action: "work", input: { millis: 1, tag: "waiting" } })
          yield* eventually(Effect.map(queue.running, (r) => r.length === 2), "two running")
          return { keyed, plain, waiting }
        }).pipe(Effect.provide(loadedQueueLayer(ws, recordingSpawner().layer, ["jobs"], { concurrency: 2 }, journal))),
      )
      expect(store.jobs.get(ids.keyed)).toMatchObject({ status: "pending", retryCount: 0 })
      expect(store.jobs.get(ids.keyed)?.startedAt).toBeUndefined()
      expect(store.jobs.get(ids.plain)).toMatchObject({ status: "failed", error: { tag: "JobInterrupted" } })
      expect(store.jobs.get(ids.waiting)?.status).toBe("pending")

      yield* Effect.scoped(
        Effect.gen(function* () {
          const queue = yield* JobQueue
          expect(yield* queue.wait(ids.keyed)).toMatchObject({ status: "completed", result: { tag: "keyed" } })
          expect(yield* queue.wait(ids.waiting)).toMatchObject({ status: "completed", result: { tag: "waiting" } })
          expect((yield* queue.wait(ids.plain)).status).toBe("failed")
        }).pipe(Effect.provide(loadedQueueLayer(ws, recordingSpawner().layer, ["jobs"], { concurrency: 2 }, journal))),
      )
    }),
  )

  it.live("a clean shutdown in the middle of a sequence leaves it to resume at the next start; a job still being cancelled ends cancelled, not re-queued", () =>
    Effect.gen(function* () {
      const store = makeMemoryJournalStore()
      const journal = JobJournalMemory(store)
      const ids = yield* Effect.scoped(
        Effect.gen(function* () {
          const queue = yield* JobQueue
          const sequence = yield* queue.submitSequence([
            { instance: "jobs", action: "work", input: { millis: 400, tag: "one" }, idempotencyKey: "seq-step-1" },
            { instance: "jobs", action: "work", input: { millis: 5, tag: "two" } },
          ])
          const stubborn = yield* queue.submit({ instance: "jobs", action: "spin", input: {}, idempotencyKey: "would-rerun" })
          yield* eventually(Effect.map(queue.running, (r) => r.length === 2), "both running")
          expect(yield* queue.cancel(stubborn)).toBe(true)
          return { sequence, stubborn }
        }).pipe(Effect.provide(loadedQueueLayer(ws, recordingSpawner().layer, ["jobs"], { concurrency: 2, cancelTimeout: "10 seconds" }, journal))),
      )
      expect(store.jobs.get(ids.stubborn)?.status).toBe("cancelled")
      expect(store.sequences.get(ids.sequence)).toMatchObject({ status: "running", current: 0 })
      yield* Effect.scoped(
        Effect.gen(function* () {
          const queue = yield* JobQueue
          const done = yield* queue.waitSequence(ids.sequence)
          expect(done.status).toBe("completed")
          expect(done.results.map((r) => (r.result as { tag: string }).tag)).toEqual(["one", "two"])
          expect((yield* queue.pending).map((j) => j.id)).not.toContain(ids.stubborn)
        }).pipe(Effect.provide(loadedQueueLayer(ws, recordingSpawner().layer, ["jobs"], { concurrency: 2 }, journal))),
      )
    }),
  )
})
