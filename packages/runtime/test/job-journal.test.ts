import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import Sqlite from "better-sqlite3"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Layer } from "effect"
import { JobError, JobId, SequenceId, type Job, type JobSequence } from "@plinth/domain"
import { DatabaseLive, databasePath, JobJournal, JobJournalLive, type JobJournalOptions, type StoreUnavailable } from "@plinth/runtime"

const freshDataDir = () => join(mkdtempSync(join(tmpdir(), "plinth-journal-")), "data")
const journalAt = (dataDir: string, options?: JobJournalOptions) => JobJournalLive(options).pipe(Layer.provide(DatabaseLive({ dataDir })))
/** Runs `f` with a journal over `dataDir`, closing it (and the database) afterwards: each call is a fresh start of a host. */
const withJournal = <A, E>(dataDir: string, f: (journal: JobJournal["Type"]) => Effect.Effect<A, E>, options?: JobJournalOptions) =>
  Effect.flatMap(JobJournal, f).pipe(Effect.provide(journalAt(dataDir, options)))
const peek = <A>(dataDir: string, f: (db: Sqlite.Database) => A): A => {
  const db = new Sqlite(databasePath({ dataDir }))
  try {
    return f(db)
  } finally {
    db.close()
  }
}

// Ids as the queue makes them, time-ordered only to the millisecond: here deliberately not in submission order.
const idOf = (n: number) => JobId.make(`job-${((n * 7919) % 100_003).toString(36)}x${n.toString(36)}`)
const T0 = 1_800_000_000_000
const pending = (n: number, extra: Partial<Job> = {}): Job => ({
  id: idOf(n),
  instance: "echo",
  action: "echo",
  input: { n, text: `input ${n}` },
  priority: n % 3,
  status: "pending",
  submittedAt: T0 + n,
  progress: -1,
  retryCount: 0,
  ...extra,
})
const running = (job: Job, at = job.submittedAt + 1): Job => ({ ...job, status: "running", startedAt: at, progress: 0.25 })
const completed = (job: Job, at = job.submittedAt + 2): Job => ({ ...job, status: "completed", startedAt: job.startedAt ?? at, finishedAt: at, progress: 1, result: { ok: job.input } })
const failed = (job: Job, at = job.submittedAt + 2): Job => ({
  ...job,
  status: "failed",
  finishedAt: at,
  retryCount: 2,
  error: new JobError({ category: "transient", tag: "PluginTransientError", message: "upstream busy", retriable: true, plugin: "echo", instance: "echo", time: new Date(at), retryAfterSeconds: 3 }),
})

describe("JobJournal (SQLite)", () => {
  it.live("gives back after a restart what was journaled: unfinished jobs as they were, finished ones newest first, findable by id and key", () =>
    Effect.gen(function* () {
      const dataDir = freshDataDir()
      const [a, b, c, d] = [pending(1), pending(2, { idempotencyKey: "order-2", timeoutMillis: 5_000 }), pending(3), pending(4)]
      yield* withJournal(dataDir, (journal) =>
        Effect.gen(function* () {
          yield* journal.write([a, b, c, d])
          yield* journal.write([running(b)])
          yield* journal.write([completed(running(c), T0 + 50)])
          yield* journal.write([failed(d, T0 + 60)])
        }),
      )
      const { recovered, byId, byKey, unknown, unknownKey } = yield* withJournal(dataDir, (journal) =>
        Effect.all({
          recovered: journal.recover(10),
          byId: journal.find(c.id),
          byKey: journal.findByKey("order-2"),
          unknown: journal.find(JobId.make("job-nothere")),
          unknownKey: journal.findByKey("no-such-key"),
        }),
      )
      expect(recovered.unfinished).toEqual([a, running(b)])
      expect(recovered.history).toEqual([failed(d, T0 + 60), completed(running(c), T0 + 50)])
      // The failure summary comes back as the domain's class, its time a Date again.
      expect(recovered.history[0]!.error).toBeInstanceOf(JobError)
      expect(recovered.history[0]!.error!.time).toEqual(new Date(T0 + 60))
      expect(recovered.sequences).toEqual([])
      expect(recovered.unreadable).toEqual([])
      expect(byId).toEqual(completed(running(c), T0 + 50))
      expect(byKey).toEqual(running(b))
      expect(unknown).toBeUndefined()
      expect(unknownKey).toBeUndefined()
      // The history is as long as asked.
      expect((yield* withJournal(dataDir, (j) => j.recover(1))).history.map((j) => j.id)).toEqual([d.id])
    }),
  )

  it.live("keeps the submission order of 1,000 jobs, however they were grouped and whatever was rewritten since", () =>
    Effect.gen(function* () {
      const dataDir = freshDataDir()
      const jobs = Array.from({ length: 1_000 }, (_, i) => pending(i))
      yield* withJournal(dataDir, (journal) =>
        Effect.gen(function* () {
          // 400 in one call, then 600 one by one with 16 callers at a time, some in the same commit.
          yield* journal.write(jobs.slice(0, 400))
          for (let i = 400; i < 1_000; i += 16) {
            yield* Effect.forEach(jobs.slice(i, i + 16), (job) => journal.write([job]), { concurrency: 1, discard: true })
            // Meanwhile older jobs move on: a job's later state never moves it in the order.
            yield* Effect.forEach([i - 400, i - 399, i - 398], (k) => journal.write([running(jobs[k]!)]), { concurrency: "unbounded", discard: true })
          }
        }),
      )
      const recovered = yield* withJournal(dataDir, (journal) => journal.recover(0))
      expect(recovered.unfinished.map((j) => j.id)).toEqual(jobs.map((j) => j.id))
      expect(recovered.unfinished.filter((j) => j.status === "running").length).toBe(3 * Math.ceil(600 / 16))
      // Neither the ids nor the times would have given this order.
      expect([...jobs.map((j) => j.id)].sort()).not.toEqual(jobs.map((j) => j.id))
    }),
  )

  it.live("writes from many callers at once all return and are all there; a caller's key conflict fails that caller alone", () =>
    Effect.gen(function* () {
      const dataDir = freshDataDir()
      const first = pending(1, { idempotencyKey: "same" })
      const second = pending(2, { idempotencyKey: "same" })
      const others = Array.from({ length: 63 }, (_, i) => pending(100 + i))
      const exits = yield* withJournal(dataDir, (journal) =>
        Effect.gen(function* () {
          yield* journal.write([first])
          // 64 callers in flight: the one reusing the key must not take the 63 others down with it.
          return yield* Effect.forEach([second, ...others], (job) => Effect.exit(journal.write([job])), { concurrency: "unbounded" })
        }),
      )
      expect(exits.slice(1).every(Exit.isSuccess)).toBe(true)
      expect(Exit.isFailure(exits[0]!)).toBe(true)
      if (Exit.isFailure(exits[0]!)) expect(String(exits[0].cause)).toContain("StoreUnavailable")
      const recovered = yield* withJournal(dataDir, (journal) => journal.recover(0))
      expect(recovered.unfinished.map((j) => j.id)).toEqual([first.id, ...others.map((j) => j.id)])
      expect(yield* withJournal(dataDir, (journal) => journal.findByKey("same"))).toEqual(first)
    }),
  )

  it.live("refuses a job JSON cannot hold, to its own caller only", () =>
    Effect.gen(function* () {
      const dataDir = freshDataDir()
      const bad = pending(1, { input: { n: 10n } })
      const [badExit, goodExit] = yield* withJournal(dataDir, (journal) =>
        Effect.all([Effect.exit(journal.write([bad])), Effect.exit(journal.write([pending(2)]))], { concurrency: "unbounded" }),
      )
      expect(Exit.isSuccess(goodExit)).toBe(true)
      expect(Exit.isFailure(badExit) && String(badExit.cause)).toContain(`job ${bad.id} cannot be recorded: it cannot be written as JSON`)
      expect((yield* withJournal(dataDir, (journal) => journal.recover(0))).unfinished.map((j) => j.id)).toEqual([idOf(2)])
    }),
  )

  it.live("reports a record it cannot read, by id and field, leaves it in the file, and still gives back every other job", () =>
    Effect.gen(function* () {
      const dataDir = freshDataDir()
      const jobs = [pending(1), pending(2), pending(3), completed(pending(4))]
      yield* withJournal(dataDir, (journal) => journal.write(jobs))
      peek(dataDir, (db) => {
        const row = db.prepare("SELECT job_json FROM jobs WHERE id = ?").get(jobs[1]!.id) as { job_json: string }
        db.prepare("UPDATE jobs SET job_json = ? WHERE id = ?").run(row.job_json.replace('"pending"', '"exploded"'), jobs[1]!.id)
        db.prepare("UPDATE jobs SET job_json = ? WHERE id = ?").run("{ not json", jobs[3]!.id)
      })
      const recovered = yield* withJournal(dataDir, (journal) => journal.recover(10))
      expect(recovered.unfinished).toEqual([jobs[0], jobs[2]])
      expect(recovered.history).toEqual([])
      expect(recovered.unreadable?.map((u) => ({ tag: u._tag, kind: u.kind, id: u.id, reason: u.reason }))).toEqual([
        { tag: "JournalRecordUnreadable", kind: "job", id: jobs[1]!.id, reason: "its field status is not valid" },
        { tag: "JournalRecordUnreadable", kind: "job", id: jobs[3]!.id, reason: "it is not a JSON record of this Plinth's format" },
      ])
      expect(recovered.unreadable?.[0]?.message).toContain(`job ${jobs[1]!.id} that cannot be read`)
      const error = yield* Effect.flip(withJournal(dataDir, (journal) => journal.find(jobs[1]!.id)))
      expect(error._tag).toBe("StoreUnavailable")
      expect(error.message).toContain(`job ${jobs[1]!.id}'s record cannot be read (its field status is not valid)`)
      expect(peek(dataDir, (db) => db.prepare("SELECT count(*) AS n FROM jobs").get())).toEqual({ n: 4 })
    }),
  )

  it.live("keeps unfinished sequences for recovery and forgets them once finished", () =>
    Effect.gen(function* () {
      const dataDir = freshDataDir()
      const sequence = (n: number, status: JobSequence["status"]): JobSequence => ({
        id: SequenceId.make(`seq-${n}`),
        mode: "failFast",
        priority: 0,
        steps: [
          { instance: "echo", action: "echo", input: { n } },
          { instance: "echo", action: "echo", input: { n: n + 1 }, idempotencyKey: `s-${n}` },
        ],
        status,
        current: status === "pending" ? 0 : 1,
        results: status === "pending" ? [] : [{ index: 0, job: idOf(n), status: "completed", result: { n } }],
        submittedAt: T0 + n,
        ...(status === "completed" ? { finishedAt: T0 + n + 9 } : {}),
      })
      yield* withJournal(dataDir, (journal) =>
        Effect.all([journal.writeSequence(sequence(1, "pending")), journal.writeSequence(sequence(2, "running")), journal.writeSequence(sequence(3, "pending"))], {
          concurrency: "unbounded",
        }).pipe(Effect.zipRight(journal.writeSequence(sequence(3, "completed")))),
      )
      const recovered = yield* withJournal(dataDir, (journal) => journal.recover(10))
      expect(recovered.sequences).toEqual([sequence(1, "pending"), sequence(2, "running")])
    }),
  )

  it.live("prunes finished jobs beyond the newest it keeps, never an unfinished one", () =>
    Effect.gen(function* () {
      const dataDir = freshDataDir()
      const keepFinished = 100
      const waiting = [pending(0), pending(1)]
      const done = Array.from({ length: 1_000 }, (_, i) => completed(pending(10 + i), T0 + 10_000 + i))
      yield* withJournal(
        dataDir,
        (journal) =>
          Effect.gen(function* () {
            yield* journal.write(waiting)
            for (let i = 0; i < done.length; i += 50) yield* journal.write(done.slice(i, i + 50))
          }),
        { keepFinished },
      )
      const finishedInFile = peek(dataDir, (db) => (db.prepare("SELECT count(*) AS n FROM jobs WHERE finished_at IS NOT NULL").get() as { n: number }).n)
      // Pruning runs once a slack (here 100) beyond the bound has gathered, in the writer's own transactions.
      expect(finishedInFile).toBeGreaterThanOrEqual(keepFinished)
      expect(finishedInFile).toBeLessThanOrEqual(2 * keepFinished)
      const recovered = yield* withJournal(dataDir, (journal) => journal.recover(keepFinished), { keepFinished })
      expect(recovered.unfinished).toEqual(waiting)
      expect(recovered.history.map((j) => j.id)).toEqual(done.slice(-keepFinished).reverse().map((j) => j.id))
      expect(yield* withJournal(dataDir, (journal) => journal.find(done[0]!.id))).toBeUndefined()
    }),
  )

  it.live("waits for another connection's write lock without freezing this process, then writes", () =>
    Effect.gen(function* () {
      const dataDir = freshDataDir()
      const { waitedMillis, longestStallMillis, recovered } = yield* withJournal(dataDir, (journal) =>
        Effect.gen(function* () {
          yield* journal.write([pending(0)])
          // Another program takes the write lock and keeps it for a second.
          const other = new Sqlite(databasePath({ dataDir }))
          other.exec("BEGIN IMMEDIATE")
          other.prepare("INSERT INTO plugin_configs (plugin, updated_at) VALUES ('other', 0)").run()
          setTimeout(() => (other.exec("COMMIT"), other.close()), 1_000)
          let last = performance.now()
          let longest = 0
          const ticker = setInterval(() => {
            const now = performance.now()
            longest = Math.max(longest, now - last)
            last = now
          }, 5)
          const started = performance.now()
          yield* journal.write([pending(1)]).pipe(Effect.ensuring(Effect.sync(() => clearInterval(ticker))))
          return { waitedMillis: performance.now() - started, longestStallMillis: longest, recovered: yield* journal.recover(0) }
        }),
      )
      expect(waitedMillis).toBeGreaterThanOrEqual(900)
      // SQLite's own busy wait (5 s) would have held the event loop for the whole second.
      expect(longestStallMillis).toBeLessThan(500)
      expect(recovered.unfinished.map((j) => j.id)).toEqual([idOf(0), idOf(1)])
    }),
  )

  it.live("commits the writes offered before the journal closed, and refuses writes afterwards", () =>
    Effect.gen(function* () {
      const dataDir = freshDataDir()
      const jobs = Array.from({ length: 200 }, (_, i) => pending(i))
      const outcomes = yield* Effect.forEach(jobs, () => Deferred.make<Exit.Exit<void, StoreUnavailable>>())
      const journalRef: Array<JobJournal["Type"]> = []
      yield* Effect.gen(function* () {
        const journal = yield* JobJournal
        journalRef.push(journal)
        // Not awaited here: the journal closes while they are in flight.
        yield* Effect.forEach(jobs, (job, i) => Effect.forkDaemon(Effect.flatMap(Effect.exit(journal.write([job])), (e) => Deferred.succeed(outcomes[i]!, e))), { discard: true })
        yield* Effect.yieldNow()
      }).pipe(Effect.provide(journalAt(dataDir)))
      const exits = yield* Effect.forEach(outcomes, Deferred.await)
      const written = jobs.filter((_, i) => Exit.isSuccess(exits[i]!))
      expect(written.length).toBeGreaterThan(0)
      for (const exit of exits) if (Exit.isFailure(exit)) expect(String(exit.cause)).toContain("the job journal was closed")
      const late = yield* Effect.flip(journalRef[0]!.write([pending(999)]))
      expect(late.message).toContain("the job journal was closed")
      // Every write that returned is in the file, and no write hung.
      const recovered = yield* withJournal(dataDir, (journal) => journal.recover(0))
      expect(recovered.unfinished.map((j) => j.id)).toEqual(written.map((j) => j.id))
    }),
  )
})
