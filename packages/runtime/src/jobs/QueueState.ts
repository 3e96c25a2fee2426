import { Deferred, Duration, Effect, Fiber, Option, Queue, Schedule } from "effect"
import {
  JobRefused,
  type CancelPhase,
  type Job,
  type JobEvent,
  type JobId,
  type JobLogLine,
  type JobSequence,
  type JobStatus,
  type SequenceId,
} from "@plinth/domain"
import type { OneShot } from "../effects/OneShot.js"
import { PluginManager } from "../manager/PluginManager.js"
import { JobJournal } from "../stores/JobJournal.js"
import { makeEventHub } from "./EventHub.js"
import { JobObservation } from "./JobObservation.js"
import { jobObservationOf } from "./JobObservationLive.js"
import type { JobQueueOptions } from "./JobQueue.js"
import { makeThroughput } from "./Throughput.js"

/*
 * The job queue's shared state (ADR 0029): its options resolved, the maps of
 * live, pending, held and finished jobs, and the small helpers every part
 * uses to change a job (each change announced when someone listens) and to
 * journal it. All of it is touched only between fiber yields (one JS thread).
 */

/** A job the queue holds in memory while it is pending or running. */
interface Entry {
  job: Job
  readonly seq: number
  readonly plugin: string
  /** Made when someone first waits: most jobs of a busy queue are never waited on one by one. */
  done: OneShot<Job> | undefined
  logs: Array<JobLogLine> | undefined
  /** The lane running the job, once it runs: interrupting it stops the job's call. */
  fiber: Fiber.RuntimeFiber<void> | undefined
  /** The fiber taking a running job through its cancel phases. */
  canceller: Fiber.RuntimeFiber<void> | undefined
  /** Set once cancel was asked for: from then on the canceller, not the job's fiber, ends the job. */
  cancelling: boolean
  /** The current attempt's call reached a worker and its cancellation is under way there. */
  cancelStarted: boolean
  cancelSettled: Deferred.Deferred<"stopped" | "killed"> | undefined
  /** The current attempt's call has its slot (the block reason no longer applies). */
  callStarted: boolean
  /** Set once finish ran: a job ends once. */
  finished: boolean
}

interface SequenceEntry {
  sequence: JobSequence
  readonly done: Deferred.Deferred<JobSequence>
  /** The job of the step now pending or running. */
  current: JobId | undefined
}

/** A job a lane has finished whose final record is not journaled yet: it rides with the lane's next write. */
interface Carried {
  readonly job: Job
  /** Announces the end and hands the job to its waiters: only once its record is journaled. */
  readonly settle: Effect.Effect<void>
}

interface LaneState {
  carry: Carried | undefined
}

interface Archived {
  readonly job: Job
  readonly logs: ReadonlyArray<JobLogLine>
}

export type { Entry, SequenceEntry, Carried, LaneState, Archived }

/** Finished jobs and lanes reach a job's sequence through these: set once the sequences are made (they need submission and cancellation, which need those). */
export interface SequenceHooks {
  sequenceStepEnded: (job: Job) => Effect.Effect<void>
  sequenceStepRunning: (id: SequenceId) => Effect.Effect<void>
}

const DEFAULT_CANCEL_TIMEOUT = Duration.seconds(3)
/** How long past `cancelTimeout` the queue waits for a worker it asked to kill to report its end. */
export const KILL_MARGIN_MILLIS = 2000
const defaultRetrySchedule = Schedule.exponential(Duration.millis(100), 2)

export const noLines: ReadonlyArray<JobLogLine> = []

export const runKey = (entry: Entry) => ({ priority: entry.job.priority, seq: entry.seq })

export const refuse = (reason: string) => new JobRefused({ reason })

export const makeQueueState = (options: JobQueueOptions) =>
  Effect.gen(function* () {
    const manager = yield* PluginManager
    const journalService = yield* Effect.serviceOption(JobJournal)
    const journal = options.journal === false ? Option.none() : journalService
    const concurrency = Math.max(1, Math.floor(options.concurrency ?? 1))
    const maxHistory = Math.max(0, Math.floor(options.maxHistory ?? 100))
    const archiveLimit = Math.max(1000, maxHistory * 10)
    const cancelTimeoutMillis = Duration.toMillis(options.cancelTimeout ?? DEFAULT_CANCEL_TIMEOUT)
    const maxRetries = Math.max(0, Math.floor(options.retry?.maxRetries ?? 2))
    const retrySchedule = options.retry?.schedule ?? defaultRetrySchedule
    const subscriberBuffer = Math.max(1, Math.floor(options.subscriberBuffer ?? 100))
    const maxLogLines = Math.max(0, Math.floor(options.maxLogLines ?? 500))
    const snapshotInterval = Duration.decode(options.snapshotInterval ?? Duration.seconds(2))
    // The host's own, else the manager's worker output and /proc samples (JobObservationLive.ts).
    const observation = Option.getOrElse(yield* Effect.serviceOption(JobObservation), () => jobObservationOf(manager))

    const hub = makeEventHub()
    const live = new Map<string, Entry>()
    /** Pending entries in run order: the next to run first. */
    const pending: Array<Entry> = []
    /**
     * Pending jobs whose instance is not loaded (after a restart, before the
     * host has loaded its plugins; or unloaded since): held aside, by instance,
     * until the manager says it is loaded, instead of failing.
     */
    const held = new Map<string, Array<Entry>>()
    /** Finished jobs, oldest first (appending is cheap); trimmed to `maxHistory` in batches. */
    const history: Array<Job> = []
    /** Finished jobs beyond the history too, so that a late waiter still finds its job; oldest evicted first. */
    const archive = new Map<string, Archived>()
    const keys = new Map<string, JobId>()
    const sequences = new Map<string, SequenceEntry>()
    const counts = { completed: 0, failed: 0, cancelled: 0 }
    const throughput = makeThroughput(Date.now())

    /** One token per job made pending: a free lane takes a token, then the first pending job. */
    const tokens = yield* Queue.unbounded<void>()
    const keyLock = yield* Effect.makeSemaphore(1)
    /** The layer's scope: shared readers of worker lines live in it. */
    const queueScope = yield* Effect.scope
    // ---- Journal ----

    const journalWrite = (jobs: ReadonlyArray<Job>) =>
      Option.isNone(journal)
        ? Effect.void
        : journal.value.write(jobs).pipe(Effect.catchAll((error) => Effect.logWarning(`the job journal could not be written: ${error.message}`)))
    const journalSequence = (sequence: JobSequence) =>
      Option.isNone(journal)
        ? Effect.void
        : journal.value.writeSequence(sequence).pipe(Effect.catchAll((error) => Effect.logWarning(`the job journal could not be written: ${error.message}`)))

    // ---- Events ----

    const common = (job: Job) => ({ job: job.id, at: Date.now(), ...(job.sequence !== undefined ? { sequence: job.sequence.id } : {}) })
    const publish = (event: JobEvent) => hub.publish(event)
    /** Someone follows the events: an event is built only then (a busy queue with no subscribers builds none). */
    const heard = () => hub.size() > 0

    const setJob = (entry: Entry, job: Job) => {
      entry.job = job
    }

    const changeState = (entry: Entry, to: JobStatus, patch: Partial<Job> = {}) => {
      const from = entry.job.status
      setJob(entry, { ...entry.job, ...patch, status: to })
      if (heard()) publish({ _tag: "stateChanged", ...common(entry.job), from, to })
    }

    const setPhase = (entry: Entry, to: CancelPhase) => {
      const from = entry.job.cancelPhase
      setJob(entry, { ...entry.job, cancelPhase: to })
      if (heard()) publish({ _tag: "cancelPhaseChanged", ...common(entry.job), ...(from !== undefined ? { from } : {}), to })
    }

    const setBlockReason = (entry: Entry, reason: string | undefined) => {
      if (entry.job.blockReason === reason) return
      const { blockReason: _previous, ...rest } = entry.job
      setJob(entry, reason === undefined ? rest : { ...rest, blockReason: reason })
      if (heard()) publish({ _tag: "blockReasonChanged", ...common(entry.job), ...(reason !== undefined ? { reason } : {}) })
    }

    const lanes = new Set<Fiber.RuntimeFiber<void>>()

    return {
      manager,
      journal,
      concurrency,
      maxHistory,
      archiveLimit,
      cancelTimeoutMillis,
      maxRetries,
      retrySchedule,
      subscriberBuffer,
      maxLogLines,
      snapshotInterval,
      observation,
      hub,
      live,
      pending,
      held,
      history,
      archive,
      keys,
      sequences,
      counts,
      throughput,
      submissions: 0,
      closing: false,
      tokens,
      keyLock,
      queueScope,
      lanes,
      journalWrite,
      journalSequence,
      common,
      publish,
      heard,
      setJob,
      changeState,
      setPhase,
      setBlockReason,
    }
  })

export type QueueState = Effect.Effect.Success<ReturnType<typeof makeQueueState>>
