import { Context, Deferred, Effect, Either, Layer, Queue, Schedule, Schema } from "effect"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { isTerminal, Job, JobLogLine, JobSequence, type JobId, type QueueStats, type SequenceId } from "@plinth/domain"

/*
 * The cluster's job records in Postgres: one row per job, shared by every
 * runner and client. The rule that makes results exactly-once: a row that
 * holds a finished job never changes again, so the first runner to record a
 * job's end wins and every reader, and every later delivery of the same job,
 * sees that one result.
 */

const encodeJob = Schema.encodeSync(Job)
const decodeJob = Schema.decodeUnknownEither(Job)
const decodeLines = Schema.decodeUnknownEither(Schema.Array(JobLogLine))
const encodeSequence = Schema.encodeSync(JobSequence)
const decodeSequence = Schema.decodeUnknownEither(JobSequence)

/** Postgres errors are retried: a database restart pauses the queue, it does not fail its jobs. */
const databaseRetry = Schedule.exponential("50 millis").pipe(Schedule.union(Schedule.spaced("1 second")), Schedule.upTo("2 minutes"))

export interface JobRowsService {
  /** Inserts a pending job; when its idempotency key is taken, the id of the job that holds it. */
  readonly insertPending: (job: Job) => Effect.Effect<{ readonly inserted: boolean; readonly id: JobId }, SqlError>
  /** Records each job's state unless its row already holds a finished job (which never changes). */
  readonly write: (jobs: ReadonlyArray<Job>, runner: string | undefined) => Effect.Effect<void, SqlError>
  readonly get: (id: JobId) => Effect.Effect<Job | undefined, SqlError>
  readonly findByKey: (key: string) => Effect.Effect<Job | undefined, SqlError>
  /** A pending job's priority; false when it is not pending. */
  readonly setPriority: (id: JobId, priority: number) => Effect.Effect<boolean, SqlError>
  /** Ends a pending job as cancelled; the cancelled job, or undefined when it was not pending. */
  readonly cancelPending: (id: JobId, now: number) => Effect.Effect<Job | undefined, SqlError>
  readonly setLogs: (id: JobId, lines: ReadonlyArray<JobLogLine>) => Effect.Effect<void, SqlError>
  readonly logs: (id: JobId) => Effect.Effect<ReadonlyArray<JobLogLine> | undefined, SqlError>
  readonly pending: (limit: number) => Effect.Effect<ReadonlyArray<Job>, SqlError>
  readonly running: (limit: number) => Effect.Effect<ReadonlyArray<Job>, SqlError>
  readonly history: (limit: number) => Effect.Effect<ReadonlyArray<Job>, SqlError>
  readonly stats: (now: number) => Effect.Effect<QueueStats, SqlError>
  readonly insertSequence: (sequence: JobSequence) => Effect.Effect<void, SqlError>
  readonly getSequence: (id: SequenceId) => Effect.Effect<JobSequence | undefined, SqlError>
  /**
   * Replaces `before` with `after`, only if the row still holds `before` (a
   * cancellation may have come in between): false when it did not.
   */
  readonly replaceSequence: (before: JobSequence, after: JobSequence) => Effect.Effect<boolean, SqlError>
}

export class JobRows extends Context.Tag("@plinth/cluster/JobRows")<JobRows, JobRowsService>() {}

interface Row {
  readonly job: unknown
}

/** One record per job, its last: a statement may not update a row twice. */
const latestOfEach = (jobs: ReadonlyArray<Job>): ReadonlyArray<Job> => [...new Map(jobs.map((job) => [job.id, job])).values()]

const jobsOf = (rows: ReadonlyArray<Row>): ReadonlyArray<Job> =>
  rows.flatMap((row) => {
    const decoded = decodeJob(row.job)
    // A row another version wrote and this one cannot read is left alone, not shown as something it is not.
    return Either.isRight(decoded) ? [decoded.right] : []
  })

export const JobRowsLive = Layer.scoped(
  JobRows,
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const retried = <A>(effect: Effect.Effect<A, SqlError>) => Effect.retry(effect, databaseRetry)
    const first = (rows: ReadonlyArray<Row>): Job | undefined => jobsOf(rows)[0]
    const json = (job: Job) => JSON.stringify(encodeJob(job))

    // Reads of one job's row are grouped: every read asked for while the last query ran goes in the next one.
    // A client waiting on many jobs, or a runner taking many deliveries, reads them in a few queries, not one each.
    const lookups = yield* Queue.unbounded<{ readonly id: string; readonly found: Deferred.Deferred<Job | undefined, SqlError> }>()
    const lookupBatch = (batch: ReadonlyArray<{ readonly id: string; readonly found: Deferred.Deferred<Job | undefined, SqlError> }>) =>
      Effect.gen(function* () {
        const ids = [...new Set(batch.map((lookup) => lookup.id))]
        const outcome = yield* Effect.either(retried(sql<{ id: string; job: unknown }>`SELECT id, job FROM plinth_jobs WHERE id IN ${sql.in(ids)}`))
        const byId = new Map<string, Job | undefined>()
        if (Either.isRight(outcome)) for (const row of outcome.right) byId.set(row.id, first([row]))
        for (const lookup of batch) {
          yield* Either.isRight(outcome) ? Deferred.succeed(lookup.found, byId.get(lookup.id)) : Deferred.fail(lookup.found, outcome.left)
        }
      })
    yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.takeBetween(lookups, 1, 500), (batch) => lookupBatch([...batch]))))

    const sequenceJson = (sequence: JobSequence) => JSON.stringify(encodeSequence(sequence))
    const firstSequence = (rows: ReadonlyArray<{ readonly sequence: unknown }>): JobSequence | undefined => {
      if (rows.length === 0) return undefined
      const decoded = decodeSequence(rows[0]!.sequence)
      return Either.isRight(decoded) ? decoded.right : undefined
    }

    return JobRows.of({
      insertSequence: (sequence) =>
        retried(
          Effect.asVoid(sql`
            INSERT INTO plinth_sequences (id, status, submitted_at, finished_at, sequence)
            VALUES (${sequence.id}, ${sequence.status}, ${sequence.submittedAt}, ${sequence.finishedAt ?? null}, ${sequenceJson(sequence)}::jsonb)
            ON CONFLICT DO NOTHING`),
        ),
      getSequence: (id) => retried(Effect.map(sql<{ sequence: unknown }>`SELECT sequence FROM plinth_sequences WHERE id = ${id}`, firstSequence)),
      replaceSequence: (before, after) =>
        retried(
          Effect.map(
            sql`UPDATE plinth_sequences SET status = ${after.status}, finished_at = ${after.finishedAt ?? null}, sequence = ${sequenceJson(after)}::jsonb
                WHERE id = ${after.id} AND sequence = ${sequenceJson(before)}::jsonb RETURNING id`,
            (rows) => rows.length > 0,
          ),
        ),
      insertPending: (job) =>
        retried(
          Effect.gen(function* () {
            const inserted = yield* sql<{ id: string }>`
              INSERT INTO plinth_jobs (id, status, priority, idempotency_key, submitted_at, job)
              VALUES (${job.id}, 'pending', ${job.priority}, ${job.idempotencyKey ?? null}, ${job.submittedAt}, ${json(job)}::jsonb)
              ON CONFLICT DO NOTHING
              RETURNING id`
            if (inserted.length > 0 || job.idempotencyKey === undefined) return { inserted: inserted.length > 0, id: job.id }
            const holder = yield* sql<{ id: string }>`SELECT id FROM plinth_jobs WHERE idempotency_key = ${job.idempotencyKey}`
            return { inserted: false, id: (holder[0]?.id ?? job.id) as JobId }
          }),
        ),
      write: (jobs, runner) =>
        jobs.length === 0
          ? Effect.void
          : retried(
              // One statement for the batch: atomic without a transaction, so a connection lost mid-write leaves nothing open.
              Effect.asVoid(sql`
                INSERT INTO plinth_jobs ${sql.insert(
                  latestOfEach(jobs).map((job) => ({
                    id: job.id,
                    status: job.status,
                    priority: job.priority,
                    idempotency_key: job.idempotencyKey ?? null,
                    submitted_at: job.submittedAt,
                    finished_at: job.finishedAt ?? null,
                    runner: runner ?? null,
                    job: json(job),
                  })),
                )}
                ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, priority = EXCLUDED.priority, finished_at = EXCLUDED.finished_at,
                  runner = COALESCE(EXCLUDED.runner, plinth_jobs.runner), job = EXCLUDED.job
                WHERE plinth_jobs.status NOT IN ('completed', 'failed', 'cancelled')`),
            ),
      get: (id) => Effect.flatMap(Deferred.make<Job | undefined, SqlError>(), (found) => Effect.zipRight(lookups.offer({ id, found }), Deferred.await(found))),
      findByKey: (key) => retried(Effect.map(sql<Row>`SELECT job FROM plinth_jobs WHERE idempotency_key = ${key}`, first)),
      setPriority: (id, priority) =>
        retried(
          Effect.map(
            sql`UPDATE plinth_jobs SET priority = ${priority}, job = jsonb_set(job, '{priority}', ${JSON.stringify(priority)}::jsonb)
                WHERE id = ${id} AND status = 'pending' RETURNING id`,
            (rows) => rows.length > 0,
          ),
        ),
      cancelPending: (id, now) =>
        retried(
          Effect.map(
            sql<Row>`UPDATE plinth_jobs SET status = 'cancelled', finished_at = ${now},
                       job = job || jsonb_build_object('status', 'cancelled', 'finishedAt', ${now}::bigint)
                     WHERE id = ${id} AND status = 'pending' RETURNING job`,
            first,
          ),
        ),
      setLogs: (id, lines) => retried(Effect.asVoid(sql`UPDATE plinth_jobs SET logs = ${JSON.stringify(lines)}::jsonb WHERE id = ${id}`)),
      logs: (id) =>
        retried(
          Effect.map(sql<{ logs: unknown }>`SELECT logs FROM plinth_jobs WHERE id = ${id}`, (rows) => {
            if (rows.length === 0) return undefined
            const decoded = decodeLines(rows[0]!.logs ?? [])
            return Either.isRight(decoded) ? decoded.right : []
          }),
        ),
      pending: (limit) =>
        retried(Effect.map(sql<Row>`SELECT job FROM plinth_jobs WHERE status = 'pending' ORDER BY priority DESC, submitted_at, id LIMIT ${limit}`, jobsOf)),
      running: (limit) => retried(Effect.map(sql<Row>`SELECT job FROM plinth_jobs WHERE status = 'running' ORDER BY submitted_at LIMIT ${limit}`, jobsOf)),
      history: (limit) =>
        retried(Effect.map(sql<Row>`SELECT job FROM plinth_jobs WHERE finished_at IS NOT NULL ORDER BY finished_at DESC, id DESC LIMIT ${limit}`, jobsOf)),
      stats: (now) =>
        retried(
          Effect.map(
            sql<{ status: string; count: string; recent: string }>`
              SELECT status, count(*) AS count, count(*) FILTER (WHERE finished_at > ${now - 60_000}) AS recent
              FROM plinth_jobs GROUP BY status`,
            (rows) => {
              const count = (status: string) => Number(rows.find((row) => row.status === status)?.count ?? 0)
              const recent = rows.reduce((sum, row) => sum + (isTerminal(row.status as Job["status"]) ? Number(row.recent) : 0), 0)
              return {
                pending: count("pending"),
                running: count("running"),
                completed: count("completed"),
                failed: count("failed"),
                cancelled: count("cancelled"),
                throughput: recent / 60,
              }
            },
          ),
        ),
    })
  }),
)
