import { Schema } from "effect"
import { JobError } from "../ErrorTaxonomy.js"

/*
 * A job: one call of one action of one managed instance, queued, ordered,
 * cancellable and journaled. Plain JSON-able structs (times in epoch
 * milliseconds), so the same value goes to the journal, the HTTP API and the
 * dashboard unchanged. The queue (runtime `jobs/`) decides; these only say.
 */

/** A job's id: `job-` and 26 characters of lower-case base32 (time-ordered, random). */
export const JobId = Schema.String.pipe(
  Schema.pattern(/^job-[0-9a-z]{1,64}$/, { message: () => "a job id looks like job-<letters and digits>" }),
  Schema.brand("JobId"),
)
export type JobId = typeof JobId.Type

/** A sequence's id: `seq-` and the same alphabet as job ids. */
export const SequenceId = Schema.String.pipe(
  Schema.pattern(/^seq-[0-9a-z]{1,64}$/, { message: () => "a sequence id looks like seq-<letters and digits>" }),
  Schema.brand("SequenceId"),
)
export type SequenceId = typeof SequenceId.Type

export const JobStatus = Schema.Literal("pending", "running", "completed", "failed", "cancelled")
export type JobStatus = typeof JobStatus.Type

/** Terminal statuses: a job in one of them never changes again. */
export const isTerminal = (status: JobStatus): boolean => status === "completed" || status === "failed" || status === "cancelled"

/**
 * Where the cancellation of a running job stands: "cooperative" (the call was
 * interrupted and the plugin asked to stop), "force" (it did not stop within
 * the cancel timeout, so its worker was killed), "reloading" (a fresh worker
 * is starting), "completed" (the cancellation is over).
 */
export const CancelPhase = Schema.Literal("cooperative", "force", "reloading", "completed")
export type CancelPhase = typeof CancelPhase.Type

/** What the job's worker used at one moment: its resident memory and the CPU time it has consumed. */
export const ResourceSnapshot = Schema.Struct({
  at: Schema.Number,
  pid: Schema.Number,
  rssBytes: Schema.Number,
  /** User + system CPU time of the worker process since it started. */
  cpuMillis: Schema.Number,
  /** CPU use since the previous snapshot of this job, in percent of one core; absent on the first. */
  cpuPercent: Schema.optional(Schema.Number),
})
export type ResourceSnapshot = typeof ResourceSnapshot.Type

/** A job's place in a sequence. */
export const SequencePosition = Schema.Struct({ id: SequenceId, index: Schema.Number })
export type SequencePosition = typeof SequencePosition.Type

export const Job = Schema.Struct({
  id: JobId,
  instance: Schema.String,
  action: Schema.String,
  /** The action's input, a JSON value. */
  input: Schema.Unknown,
  /** Higher runs first; equal priorities run first in, first out. */
  priority: Schema.Number,
  status: JobStatus,
  /** Present when the submitter said a re-run is safe (and to deduplicate submissions). */
  idempotencyKey: Schema.optional(Schema.String),
  /** Each attempt's deadline, in milliseconds. */
  timeoutMillis: Schema.optional(Schema.Number),
  submittedAt: Schema.Number,
  startedAt: Schema.optional(Schema.Number),
  finishedAt: Schema.optional(Schema.Number),
  /** 0 to 1, or -1 while the plugin has not said. */
  progress: Schema.Number,
  statusMessage: Schema.optional(Schema.String),
  /** The action's output, a JSON value, when completed. */
  result: Schema.optional(Schema.Unknown),
  error: Schema.optional(JobError),
  /** Retries so far, by the queue (transient failures) and by the manager (retry after eviction). */
  retryCount: Schema.Number,
  sequence: Schema.optional(SequencePosition),
  cancelRequestedAt: Schema.optional(Schema.Number),
  cancelPhase: Schema.optional(CancelPhase),
  /** Why the job is waiting, in words, while the scheduler holds it. */
  blockReason: Schema.optional(Schema.String),
  lastSnapshot: Schema.optional(ResourceSnapshot),
})
export type Job = typeof Job.Type

/** A job as it enters a queue: pending, no progress yet, no retries. */
export const newPendingJob = (
  id: JobId,
  request: {
    readonly instance: string
    readonly action: string
    readonly input: unknown
    readonly idempotencyKey?: string | undefined
    readonly sequence?: SequencePosition | undefined
  },
  priority: number,
  timeoutMillis: number | undefined,
  now: number,
): Job => {
  // The optional fields are added, not spread in: a busy queue makes thousands of these a second.
  const job: { -readonly [K in keyof Job]: Job[K] } = {
    id,
    instance: request.instance,
    action: request.action,
    input: request.input,
    priority,
    status: "pending",
    submittedAt: now,
    progress: -1,
    retryCount: 0,
  }
  if (request.idempotencyKey !== undefined) job.idempotencyKey = request.idempotencyKey
  if (timeoutMillis !== undefined) job.timeoutMillis = timeoutMillis
  if (request.sequence !== undefined) job.sequence = request.sequence
  return job
}

export const QueueStats = Schema.Struct({
  pending: Schema.Number,
  running: Schema.Number,
  completed: Schema.Number,
  failed: Schema.Number,
  cancelled: Schema.Number,
  /** Jobs finished per second over the last minute. */
  throughput: Schema.Number,
})
export type QueueStats = typeof QueueStats.Type

/** One line a worker wrote to stdout or stderr while a job ran on it. */
export const JobLogLine = Schema.Struct({
  at: Schema.Number,
  stream: Schema.Literal("stdout", "stderr"),
  line: Schema.String,
})
export type JobLogLine = typeof JobLogLine.Type
