import { SqlError } from "@effect/sql/SqlError"
import { isTerminal, Job, JobSequence } from "@plinth/domain"
import Sqlite from "better-sqlite3"
import { Cause, Deferred, Effect, Either, Exit, Layer, Option, ParseResult, Schedule, Schema } from "effect"
import { StoreDatabase } from "./Database.js"
import { JobJournal, JournalRecordUnreadable, type RecoveredJournal } from "./JobJournal.js"
import { StoreUnavailable } from "./StoreErrors.js"
import { makeOneShot, type OneShot } from "../effects/OneShot.js"

/*
 * The job journal in the stores' SQLite file (tables `jobs` and
 * `job_sequences`, migration 3). One writer fiber drains the callers' writes
 * and commits everything waiting in one BEGIN IMMEDIATE transaction (grouped
 * commit); each caller returns once the commit that carries its records has
 * returned. See ADR 0030.
 *
 * The writes go through a connection of the journal's own (better-sqlite3,
 * the driver under the stores' client), the file's reads through the stores'
 * client. A group's transaction is then one synchronous call over prepared
 * statements: through the client, each of its statements was an effect with
 * a statement-cache lookup, which was most of a commit's cost and, with a
 * commit before each job's call, a third of a journaled job's. Being one
 * synchronous call, the transaction is never open across a yield, so the
 * stores' connection never waits on it; the journal's connection does not
 * wait on a lock at all (busy timeout 0) but retries a busy lock
 * asynchronously, so the process never freezes. It commits with
 * `synchronous = NORMAL` (durable against a crash of the process, ADR 0030).
 */

export interface JobJournalOptions {
  /** Finished jobs (and finished sequences) kept in the file, newest first; older ones are pruned. Default 10,000. */
  readonly keepFinished?: number | undefined
  /** Most write calls carried by one transaction; default 1,000. */
  readonly maxBatch?: number | undefined
}

export const DEFAULT_KEEP_FINISHED = 10_000

const JobJson = Schema.parseJson(Job)
const SequenceJson = Schema.parseJson(JobSequence)
const encodeJob = Schema.encodeEither(JobJson)
const decodeJob = Schema.decodeUnknownEither(JobJson)

/**
 * A job's record. The Job Schema transforms no field but `error` (a JobError,
 * whose time is a Date): a job without one is its own encoded form, and its
 * JSON is JSON.stringify's (three records a job, this was a tenth of a
 * journaled job's host time). With an error, or a value JSON cannot hold
 * (then the Schema says which field), the Schema encodes it.
 */
const jobJson = (job: Job): Either.Either<string, ParseResult.ParseError> => {
  if (job.error === undefined) {
    try {
      return Either.right(JSON.stringify(job))
    } catch {
      // A BigInt or a cycle somewhere in the input or result: the Schema's encoding names the field.
    }
  }
  return encodeJob(job)
}
const encodeSequence = Schema.encodeEither(SequenceJson)
const decodeSequence = Schema.decodeUnknownEither(SequenceJson)

type Value = string | number | null

// Column order of the upserts below; `seq` is left to SQLite (the rowid, kept by the upsert: submission order).
const JOB_COLUMNS = [
  "id",
  "instance",
  "action",
  "priority",
  "status",
  "idempotency_key",
  "submitted_at",
  "started_at",
  "finished_at",
  "progress",
  "retry_count",
  "sequence_id",
  "sequence_index",
  "job_json",
] as const
const SEQUENCE_COLUMNS = ["id", "status", "submitted_at", "finished_at", "sequence_json"] as const

/**
 * Multi-row upserts in a few fixed sizes: a batch is cut into chunks of these
 * sizes, so the prepared-statement cache holds five texts instead of one per
 * batch size, and a statement binds at most 256 × 14 parameters.
 */
const CHUNK_SIZES = [256, 64, 16, 4, 1] as const

const upsertText = (table: string, columns: ReadonlyArray<string>, rows: number): string => {
  const tuple = `(${columns.map(() => "?").join(", ")})`
  const updates = columns
    .filter((c) => c !== "id")
    .map((c) => `${c} = excluded.${c}`)
    .join(", ")
  return `INSERT INTO ${table} (${columns.join(", ")}) VALUES ${Array.from({ length: rows }, () => tuple).join(", ")} ON CONFLICT (id) DO UPDATE SET ${updates}`
}
const jobUpserts = new Map(CHUNK_SIZES.map((n) => [n, upsertText("jobs", JOB_COLUMNS, n)]))
const sequenceUpserts = new Map(CHUNK_SIZES.map((n) => [n, upsertText("job_sequences", SEQUENCE_COLUMNS, n)]))

interface Row {
  readonly id: string
  readonly finished: boolean
  readonly values: ReadonlyArray<Value>
}

const jobRow = (job: Job, json: string): Row => {
  const finished = isTerminal(job.status)
  return {
    id: job.id,
    finished,
    values: [
      job.id,
      job.instance,
      job.action,
      job.priority,
      job.status,
      job.idempotencyKey ?? null,
      job.submittedAt,
      job.startedAt ?? null,
      finished ? (job.finishedAt ?? job.submittedAt) : null,
      job.progress,
      job.retryCount,
      job.sequence?.id ?? null,
      job.sequence?.index ?? null,
      json,
    ],
  }
}

const sequenceRow = (sequence: JobSequence, json: string): Row => {
  const finished = isTerminal(sequence.status)
  return {
    id: sequence.id,
    finished,
    values: [sequence.id, sequence.status, sequence.submittedAt, finished ? (sequence.finishedAt ?? sequence.submittedAt) : null, json],
  }
}

/** Which field of a record is wrong, in words (never the Schema's own text). */
const describeParseError = (error: ParseResult.ParseError, direction: "read" | "write" = "read"): string => {
  const first = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  if (first === undefined || first.path.length === 0) {
    return direction === "read" ? "it is not a JSON record of this Plinth's format" : "it cannot be written as JSON (its input or result holds a value JSON has no form for)"
  }
  return `its field ${first.path.map(String).join(".")} is not valid`
}

type Request =
  | { readonly _tag: "Write"; readonly jobs: ReadonlyArray<Row>; readonly sequences: ReadonlyArray<Row>; readonly done: OneShot<void, StoreUnavailable> }
  | { readonly _tag: "Drain"; readonly done: Deferred.Deferred<void> }

/** The last record per id, at the place of its first: a job written pending then running in one batch keeps its submission position. */
const lastPerId = (rows: ReadonlyArray<Row>): ReadonlyArray<Row> => {
  if (rows.length < 2) return rows
  const at = new Map<string, number>()
  const out: Array<Row> = []
  for (const row of rows) {
    const i = at.get(row.id)
    if (i === undefined) {
      at.set(row.id, out.length)
      out.push(row)
    } else out[i] = row
  }
  return out
}

const isBusy = (e: SqlError) => /SQLITE_BUSY|database is locked/.test(`${(e.cause as { code?: unknown } | undefined)?.code ?? ""} ${String(e.cause)}`)
const isConstraint = (e: SqlError) => /^SQLITE_CONSTRAINT/.test(String((e.cause as { code?: unknown } | undefined)?.code ?? ""))

export const JobJournalLive = (options: JobJournalOptions = {}): Layer.Layer<JobJournal, never, StoreDatabase> =>
  Layer.scoped(
    JobJournal,
    Effect.gen(function* () {
      const { path, sql } = yield* StoreDatabase
      const keep = Math.max(0, Math.trunc(options.keepFinished ?? DEFAULT_KEEP_FINISHED))
      // Pruning waits until this many more than `keep` may be there: one DELETE per slack's worth of finished jobs, not per batch.
      const slack = Math.max(100, Math.ceil(keep / 10))
      const maxBatch = Math.max(1, Math.trunc(options.maxBatch ?? 1_000))
      // The callers' requests, oldest first, and a latch open while there are any. Not an Effect Queue: a take
      // on an empty Queue makes a Deferred (~7 µs), and the writer waits on an empty one before most commits.
      let requests: Array<Request> = []
      const requested = Effect.unsafeMakeLatch(false)
      const request = (r: Request) => {
        requests.push(r)
        requested.unsafeOpen()
      }
      // Finished rows in the file, counted at the first commit and then estimated from above (a re-written finished job counts twice).
      let finishedJobs: number | undefined
      let finishedSequences: number | undefined

      const unavailable = (e: SqlError) => StoreUnavailable.fromSql(path, e)

      // Opened at the first commit (the stores' layer has created and migrated the file by then), closed after the writer stops.
      let db: Sqlite.Database | undefined
      const statements = new Map<string, Sqlite.Statement>()
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          statements.clear()
          db?.close()
          db = undefined
        }),
      )
      const connection = (): Sqlite.Database => {
        if (db !== undefined) return db
        const opened = new Sqlite(path, { fileMustExist: true })
        try {
          opened.pragma("busy_timeout = 0")
          opened.pragma("synchronous = NORMAL")
        } catch (e) {
          opened.close()
          throw e
        }
        return (db = opened)
      }
      const statement = (text: string): Sqlite.Statement => {
        let prepared = statements.get(text)
        if (prepared === undefined) statements.set(text, (prepared = connection().prepare(text)))
        return prepared
      }

      const upsert = (texts: ReadonlyMap<number, string>, rows: ReadonlyArray<Row>) => {
        let at = 0
        for (const size of CHUNK_SIZES) {
          while (rows.length - at >= size) {
            const params: Array<Value> = []
            for (let i = at; i < at + size; i++) for (const v of rows[i]!.values) params.push(v)
            statement(texts.get(size)!).run(params)
            at += size
          }
        }
      }

      const count = (table: "jobs" | "job_sequences") =>
        (statement(`SELECT count(*) AS n FROM ${table} WHERE finished_at IS NOT NULL`).get() as { n?: number } | undefined)?.n ?? 0

      // The newest `keep` finished records stay; unfinished ones are never pruned.
      const prune = (table: "jobs" | "job_sequences") =>
        statement(`DELETE FROM ${table} WHERE seq IN (SELECT seq FROM ${table} WHERE finished_at IS NOT NULL ORDER BY finished_at DESC, seq DESC LIMIT -1 OFFSET ?)`).run(keep)

      /** One transaction, in one synchronous call: the rows, then pruning when due. The finished counts to keep once it has committed. */
      const transaction = (jobs: ReadonlyArray<Row>, sequences: ReadonlyArray<Row>) => {
        const conn = connection()
        statement("BEGIN IMMEDIATE").run()
        try {
          upsert(jobUpserts, jobs)
          upsert(sequenceUpserts, sequences)
          let jobsAfter = (finishedJobs ?? count("jobs")) + jobs.filter((r) => r.finished).length
          let sequencesAfter = (finishedSequences ?? count("job_sequences")) + sequences.filter((r) => r.finished).length
          if (jobsAfter > keep + slack) {
            prune("jobs")
            jobsAfter = count("jobs")
          }
          if (sequencesAfter > keep + slack) {
            prune("job_sequences")
            sequencesAfter = count("job_sequences")
          }
          statement("COMMIT").run()
          return { jobsAfter, sequencesAfter }
        } catch (e) {
          if (conn.inTransaction) statement("ROLLBACK").run()
          throw e
        }
      }

      const counted = ({ jobsAfter, sequencesAfter }: { readonly jobsAfter: number; readonly sequencesAfter: number }) => {
        finishedJobs = jobsAfter
        finishedSequences = sequencesAfter
      }

      const commitRetried = (jobs: ReadonlyArray<Row>, sequences: ReadonlyArray<Row>) =>
        Effect.try({
          try: () => transaction(jobs, sequences),
          catch: (cause) => new SqlError({ cause, message: "Failed to write the job journal" }),
        }).pipe(
          // Another connection holds the write lock: try again after short asynchronous pauses, for up to ~15 s.
          Effect.retry({
            while: isBusy,
            schedule: Schedule.exponential("2 millis").pipe(Schedule.either(Schedule.spaced("200 millis")), Schedule.upTo("15 seconds")),
          }),
          Effect.tap((after) => Effect.sync(() => counted(after))),
        )

      // The first try is a plain call: the retry schedule (a driver and its state per commit) is built only when the lock is busy.
      const commitOnce = (jobs: ReadonlyArray<Row>, sequences: ReadonlyArray<Row>): Effect.Effect<void, SqlError> =>
        Effect.suspend(() => {
          try {
            counted(transaction(jobs, sequences))
            return Effect.void
          } catch (cause) {
            const error = new SqlError({ cause, message: "Failed to write the job journal" })
            return isBusy(error) ? Effect.asVoid(commitRetried(jobs, sequences)) : Effect.fail(error)
          }
        })

      const commit = (writes: ReadonlyArray<Extract<Request, { _tag: "Write" }>>) =>
        commitOnce(lastPerId(writes.flatMap((w) => w.jobs)), lastPerId(writes.flatMap((w) => w.sequences)))

      const describeFailure = (cause: Cause.Cause<SqlError>): StoreUnavailable =>
        Cause.failureOption(cause).pipe(
          Option.map(unavailable),
          Option.getOrElse(() => new StoreUnavailable({ path, reason: Cause.pretty(cause).split("\n")[0] ?? "the journal write failed" })),
        )

      const settle = (write: Extract<Request, { _tag: "Write" }>, exit: Exit.Exit<unknown, SqlError>) =>
        Effect.sync(() => write.done.done(Exit.isSuccess(exit) ? Exit.void : Exit.fail(describeFailure(exit.cause))))

      const drainOnce = Effect.gen(function* () {
        yield* requested.await
        // Let the callers that are ready offer theirs too, so that they share this commit.
        yield* Effect.yieldNow()
        const taken = requests.length <= maxBatch ? requests : requests.slice(0, maxBatch)
        requests = requests.length <= maxBatch ? [] : requests.slice(maxBatch)
        if (requests.length === 0) requested.unsafeClose()
        const writes = taken.filter((r): r is Extract<Request, { _tag: "Write" }> => r._tag === "Write")
        if (writes.length > 0) {
          const exit = yield* Effect.exit(commit(writes))
          const constraint = Exit.isFailure(exit) && Option.exists(Cause.failureOption(exit.cause), isConstraint)
          if (constraint && writes.length > 1) {
            // One caller's record breaks a constraint (an idempotency key already used by another job):
            // the whole group rolled back, so each caller is written on its own and only that one fails.
            for (const write of writes) yield* settle(write, yield* Effect.exit(commit([write])))
          } else {
            const settled = Exit.isSuccess(exit) ? Exit.void : Exit.fail(describeFailure(exit.cause))
            for (const write of writes) write.done.done(settled)
          }
        }
        for (const r of taken) if (r._tag === "Drain") yield* Deferred.succeed(r.done, undefined)
      })
      // Runs last, after the writer has stopped: a request that slipped in behind the drain is failed, not left waiting.
      yield* Effect.addFinalizer(() =>
        Effect.suspend(() => {
          const left = requests
          requests = []
          return Effect.forEach(
            left,
            (r) =>
              r._tag === "Write"
                ? Effect.sync(() => r.done.done(Exit.fail(new StoreUnavailable({ path, reason: "the job journal was closed" }))))
                : Deferred.succeed(r.done, undefined),
            { discard: true },
          )
        }),
      )
      yield* Effect.forkScoped(Effect.forever(drainOnce))

      let closed = false
      // Added after the writer, so it runs before the writer is stopped: every write offered is committed (or failed) first.
      yield* Effect.addFinalizer(() =>
        Effect.suspend(() => {
          closed = true
          return Effect.flatMap(Deferred.make<void>(), (done) =>
            Effect.sync(() => request({ _tag: "Drain", done })).pipe(Effect.zipRight(Effect.ignore(Effect.timeout(Deferred.await(done), "30 seconds")))),
          )
        }),
      )

      /** Offers the rows to the writer and waits for their commit; called inside the caller's own suspend (one effect step per write, not four). */
      const offered = (jobs: ReadonlyArray<Row>, sequences: ReadonlyArray<Row>): Effect.Effect<void, StoreUnavailable> => {
        if (closed) return Effect.fail(new StoreUnavailable({ path, reason: "the job journal was closed" }))
        // Made and handed over at once: a write costs the writer's commit, not extra steps of its own.
        const done = makeOneShot<void, StoreUnavailable>()
        request({ _tag: "Write", jobs, sequences, done })
        return done.await
      }

      // Encoded in the caller's fiber: a record that cannot be encoded fails its own caller, before it reaches the group.
      const writeJobs = (jobs: ReadonlyArray<Job>): Effect.Effect<void, StoreUnavailable> =>
        Effect.suspend(() => {
          const rows: Array<Row> = []
          for (const job of jobs) {
            const json = jobJson(job)
            if (Either.isLeft(json)) {
              return Effect.fail(new StoreUnavailable({ path, reason: `job ${job.id} cannot be recorded: ${describeParseError(json.left, "write")}` }))
            }
            rows.push(jobRow(job, json.right))
          }
          return offered(rows, [])
        })

      const readJob = (row: { readonly id: string; readonly job_json: string }): Either.Either<Job, JournalRecordUnreadable> =>
        Either.mapLeft(decodeJob(row.job_json), (e) => new JournalRecordUnreadable({ path, kind: "job", id: row.id, reason: describeParseError(e) }))
      const readSequence = (row: { readonly id: string; readonly sequence_json: string }): Either.Either<JobSequence, JournalRecordUnreadable> =>
        Either.mapLeft(
          decodeSequence(row.sequence_json),
          (e) => new JournalRecordUnreadable({ path, kind: "sequence", id: row.id, reason: describeParseError(e) }),
        )

      const recover = (historyLimit: number) =>
        Effect.gen(function* () {
          const limit = Math.max(0, Math.trunc(Number.isFinite(historyLimit) ? historyLimit : 0))
          // One read transaction: the three lists are one moment's journal.
          const [unfinishedRows, sequenceRows, historyRows] = yield* sql.withTransaction(
            Effect.all([
              sql<{ readonly id: string; readonly job_json: string }>`SELECT id, job_json FROM jobs WHERE finished_at IS NULL ORDER BY seq`,
              sql<{ readonly id: string; readonly sequence_json: string }>`SELECT id, sequence_json FROM job_sequences WHERE finished_at IS NULL ORDER BY seq`,
              sql<{ readonly id: string; readonly job_json: string }>`SELECT id, job_json FROM jobs WHERE finished_at IS NOT NULL ORDER BY finished_at DESC, seq DESC LIMIT ${limit}`,
            ]),
          )
          const unreadable: Array<JournalRecordUnreadable> = []
          const keepReadable = <A>(results: ReadonlyArray<Either.Either<A, JournalRecordUnreadable>>): ReadonlyArray<A> => {
            const out: Array<A> = []
            for (const r of results) {
              if (Either.isRight(r)) out.push(r.right)
              else unreadable.push(r.left)
            }
            return out
          }
          const recovered: RecoveredJournal = {
            unfinished: keepReadable(unfinishedRows.map(readJob)),
            sequences: keepReadable(sequenceRows.map(readSequence)),
            history: keepReadable(historyRows.map(readJob)),
            unreadable,
          }
          for (const u of unreadable) yield* Effect.logWarning(u.message)
          return recovered
        }).pipe(Effect.mapError(unavailable))

      const findOne = (rows: Effect.Effect<ReadonlyArray<{ readonly id: string; readonly job_json: string }>, SqlError>) =>
        Effect.flatMap(Effect.mapError(rows, unavailable), (found) => {
          const row = found[0]
          if (row === undefined) return Effect.succeed(undefined)
          return Either.match(readJob(row), {
            onRight: (job) => Effect.succeed<Job | undefined>(job),
            onLeft: (u) =>
              Effect.zipRight(Effect.logWarning(u.message), Effect.fail(new StoreUnavailable({ path, reason: `job ${u.id}'s record cannot be read (${u.reason})` }))),
          })
        })

      return {
        write: (jobs) => (jobs.length === 0 ? Effect.void : writeJobs(jobs)),
        writeSequence: (sequence) =>
          Effect.suspend(() => {
            const json = encodeSequence(sequence)
            return Either.isLeft(json)
              ? Effect.fail(new StoreUnavailable({ path, reason: `sequence ${sequence.id} cannot be recorded: ${describeParseError(json.left, "write")}` }))
              : offered([], [sequenceRow(sequence, json.right)])
          }),
        recover,
        find: (job) => findOne(sql<{ readonly id: string; readonly job_json: string }>`SELECT id, job_json FROM jobs WHERE id = ${job}`),
        findByKey: (key) =>
          findOne(sql<{ readonly id: string; readonly job_json: string }>`SELECT id, job_json FROM jobs WHERE idempotency_key = ${key}`),
      }
    }),
  )
