import { Context, type Duration, type Effect, type Option, type Schedule, type Scope, type Stream } from "effect"
import type {
  Job,
  JobEvent,
  JobId,
  JobLogLine,
  JobNotFound,
  JobRefused,
  JobSequence,
  QueueStats,
  SequenceId,
  SequenceMode,
  SequencePosition,
  SequenceStep,
} from "@plinth/domain"

/*
 * The job queue: plugin work a host runs for its users, queued, ordered by
 * priority then arrival, cancelled in phases, retried, watched through events
 * and journaled in the stores' database so that no job is lost when the host
 * dies. It runs jobs through the PluginManager (its scheduling, its retry
 * after eviction). See ADR 0029 (the queue) and ADR 0030 (the journal).
 */

export interface SubmitJob {
  readonly instance: string
  readonly action: string
  readonly input: unknown
  /** Higher runs first; default 0. */
  readonly priority?: number
  /** Each attempt's deadline. */
  readonly timeout?: Duration.DurationInput
  /**
   * Says a re-run is safe: a job that was running when its host died is queued
   * again only when it has one. A second submission with a key already known
   * returns the first job's id.
   */
  readonly idempotencyKey?: string
  /**
   * The id the job already has, when it was accepted elsewhere: a cluster
   * runner runs under the id the cluster's queue gave it. Fresh otherwise.
   */
  readonly id?: JobId
  /** The job's place in a sequence run elsewhere (a cluster's sequence step), carried in its record and its events. */
  readonly sequence?: SequencePosition
}

export interface SubmitSequenceOptions {
  readonly mode?: SequenceMode
  readonly priority?: number
}

/** One subscriber's view of the events: its own bounded buffer and what it had to drop. */
export interface EventSubscription {
  readonly events: Stream.Stream<JobEvent>
  /** Events that arrived while this subscriber's buffer was full, and were dropped for it alone. */
  readonly dropped: Effect.Effect<number>
}

export type EventFilter =
  | { readonly _tag: "all" }
  | { readonly _tag: "job"; readonly job: JobId }
  | { readonly _tag: "sequence"; readonly sequence: SequenceId }

export interface JobQueueOptions {
  /** Jobs that run at once; default 1. */
  readonly concurrency?: number
  /** Finished jobs kept in memory, newest first; default 100. */
  readonly maxHistory?: number
  /** How long a cancelled running job may take to stop before its worker is killed; default 3 s. */
  readonly cancelTimeout?: Duration.DurationInput
  /** Retries of transient failures: the plugin's `retryAfterSeconds`, else this schedule; default 2 retries. */
  readonly retry?: { readonly maxRetries?: number; readonly schedule?: Schedule.Schedule<unknown, unknown> }
  /** How often a running job's worker is measured; default 2 s. */
  readonly snapshotInterval?: Duration.DurationInput
  /** Log lines kept per job; default 500. */
  readonly maxLogLines?: number
  /** Events each subscriber may hold unread before it drops; default 100. */
  readonly subscriberBuffer?: number
  /** Journal every job in the stores' database (JobJournal); default true where a database is provided. */
  readonly journal?: boolean
}

export class JobQueue extends Context.Tag("@plinth/runtime/JobQueue")<
  JobQueue,
  {
    readonly submit: (job: SubmitJob) => Effect.Effect<JobId, JobRefused>
    /** Changes a pending job's priority; false when it is not pending. */
    readonly reorder: (job: JobId, priority: number) => Effect.Effect<boolean>
    /** Cancels a pending or running job; false when it has finished or is unknown. */
    readonly cancel: (job: JobId) => Effect.Effect<boolean>
    readonly get: (job: JobId) => Effect.Effect<Option.Option<Job>>
    /** The job once it has finished, even when it has left the history. */
    readonly wait: (job: JobId) => Effect.Effect<Job, JobNotFound>
    /** Pending jobs in the order they will run. */
    readonly pending: Effect.Effect<ReadonlyArray<Job>>
    readonly running: Effect.Effect<ReadonlyArray<Job>>
    /** Finished jobs, newest first, at most `maxHistory`. */
    readonly history: (limit?: number) => Effect.Effect<ReadonlyArray<Job>>
    readonly stats: Effect.Effect<QueueStats>
    /** The lines the job's worker wrote while the job ran, oldest first. */
    readonly logs: (job: JobId) => Effect.Effect<ReadonlyArray<JobLogLine>, JobNotFound>
    readonly submitSequence: (steps: ReadonlyArray<SequenceStep>, options?: SubmitSequenceOptions) => Effect.Effect<SequenceId, JobRefused>
    readonly cancelSequence: (sequence: SequenceId) => Effect.Effect<boolean>
    readonly getSequence: (sequence: SequenceId) => Effect.Effect<Option.Option<JobSequence>>
    readonly waitSequence: (sequence: SequenceId) => Effect.Effect<JobSequence, JobNotFound>
    readonly subscribe: (filter: EventFilter, options?: { readonly buffer?: number }) => Effect.Effect<EventSubscription, never, Scope.Scope>
    /** The job's events from now on; the stream ends after the one that finished the job (at once if it has finished). */
    readonly events: (job: JobId) => Stream.Stream<JobEvent>
    readonly sequenceEvents: (sequence: SequenceId) => Stream.Stream<JobEvent>
    readonly allEvents: Stream.Stream<JobEvent>
  }
>() {}
