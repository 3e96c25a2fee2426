import { Cause, Deferred, Duration, Effect, Exit, Fiber, FiberId, Layer, Option, Queue, Schedule, Scope, Stream } from "effect"
import {
  afterInterruption,
  categoryOf,
  describeBlockReason,
  describeJsonValueProblem,
  compareRunOrder,
  insertionIndexBy,
  isPluginFailure,
  isTerminal,
  JobError,
  JobNotFound,
  JobRefused,
  jsonValueProblem,
  newSequence,
  priorityProblem,
  sequenceCancelled,
  stepEnded,
  stepStarted,
  timeoutProblem,
  toJobError,
  type CancelPhase,
  type Job,
  type JobEvent,
  type JobId,
  type JobLogLine,
  type JobSequence,
  type JobStatus,
  type SequenceId,
  type SequenceStep,
} from "@plinth/domain"
import type { CancelProgress } from "../instance/WorkerConnection.js"
import { PluginManager, type CallFailure, type ManagedInstance } from "../manager/PluginManager.js"
import { JobJournal } from "../stores/JobJournal.js"
import type { StoreUnavailable } from "../stores/StoreErrors.js"
import { makeEventHub } from "./EventHub.js"
import { newJobId, newSequenceId } from "./JobIds.js"
import { JobObservation } from "./JobObservation.js"
import { jobObservationOf } from "./JobObservationLive.js"
import { JobQueue, type EventFilter, type JobQueueOptions, type SubmitJob, type SubmitSequenceOptions } from "./JobQueue.js"
import { makeThroughput } from "./Throughput.js"

/*
 * The live job queue (issue 9 §1, §3, §4; ADR 0029). Pending jobs wait in
 * one array kept in run order (domain Ordering.ts); `concurrency` lanes
 * (fibers) each take the first whenever they are free and run it
 * through PluginManager.execute, so the manager's guards, scheduling and
 * retry after eviction apply. All state is plain mutable maps touched only
 * between fiber yields (one JS thread), and every change of a job is
 * journaled (when a JobJournal is provided) before the queue acts on it.
 */

/** A job the queue holds in memory while it is pending or running. */
interface Entry {
  job: Job
  readonly seq: number
  readonly plugin: string
  /** Made when someone first waits: most jobs of a busy queue are never waited on one by one. */
  done: Deferred.Deferred<Job> | undefined
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

const defaultTracer = Effect.runSync(Effect.tracer)
const DEFAULT_CANCEL_TIMEOUT = Duration.seconds(3)
/** How long past `cancelTimeout` the queue waits for a worker it asked to kill to report its end. */
const KILL_MARGIN_MILLIS = 2000
const defaultRetrySchedule = Schedule.exponential(Duration.millis(100), 2)

const noLines: ReadonlyArray<JobLogLine> = []

const runKey = (entry: Entry) => ({ priority: entry.job.priority, seq: entry.seq })

const refuse = (reason: string) => new JobRefused({ reason })

export const makeJobQueue = (options: JobQueueOptions = {}) =>
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
    const observation = Option.orElse(yield* Effect.serviceOption(JobObservation), () => Option.some(jobObservationOf(manager)))

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
    let submissions = 0
    let closing = false

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

    // ---- Finishing ----

    const archiveJob = (job: Job, logs: ReadonlyArray<JobLogLine>) => {
      history.push(job)
      if (history.length > 2 * maxHistory + 64) history.splice(0, history.length - maxHistory)
      archive.set(job.id, { job, logs })
      if (archive.size > archiveLimit + 64) {
        // Evicted in batches, oldest first (a Map iterates in insertion order).
        for (const [id, { job: gone }] of archive) {
          if (archive.size <= archiveLimit) break
          archive.delete(id)
          if (gone.idempotencyKey !== undefined && keys.get(gone.idempotencyKey) === gone.id) keys.delete(gone.idempotencyKey)
        }
      }
    }

    /**
     * Ends a job once: journaled first, then counted, announced, handed to
     * its waiters and to its sequence.
     */
    const finish = (entry: Entry, to: "completed" | "failed" | "cancelled", patch: Partial<Job> = {}): Effect.Effect<void> =>
      Effect.suspend(() => finishMarked(entry, to, patch))

    /** Marks the job finished at once (no one may cancel or reorder it from here), and returns what journals and announces it. */
    const finishMarked = (entry: Entry, to: "completed" | "failed" | "cancelled", patch: Partial<Job>): Effect.Effect<void> => {
      const record = finishRecord(entry, to, patch)
      if (record === undefined) return Effect.void
      return Option.isNone(journal) ? record.settle : Effect.zipRight(journalWrite([record.job]), record.settle)
    }

    /** Marks the job finished (see finishMarked); its final record and what announces it, to run once that record is journaled. Undefined when it had already ended. */
    const finishRecord = (entry: Entry, to: "completed" | "failed" | "cancelled", patch: Partial<Job>): Carried | undefined => {
      if (entry.finished) return undefined
      entry.finished = true
      unwatch(entry)
      const now = Date.now()
      const from = entry.job.status
      const { blockReason: _b, ...rest } = entry.job
      const job: Job = { ...rest, ...patch, status: to, finishedAt: now }
      entry.job = job
      const settle = Effect.suspend(() => {
        live.delete(job.id)
        archiveJob(job, entry.logs ?? noLines)
        counts[to]++
        throughput.record(now)
        if (heard()) publish({ _tag: "stateChanged", ...common(job), from, to })
        if (entry.done !== undefined) Deferred.unsafeDone(entry.done, Exit.succeed(job))
        return job.sequence === undefined ? Effect.void : sequenceStepEnded(job)
      })
      return { job, settle }
    }

    // ---- Submitting ----

    /** Each plugin's declared actions: its manifest was verified when the manager started and does not change. */
    const declared = new Map<string, ReadonlySet<string>>()

    const instanceProblem = (instance: string, action: string): Effect.Effect<{ plugin: string } | { problem: string }> =>
      Effect.gen(function* () {
        const found = yield* Effect.either(manager.get(instance))
        if (found._tag === "Left") {
          const loaded = found.left.loaded
          return { problem: `instance '${instance}' is not loaded; load it first${loaded.length > 0 ? ` (loaded: ${loaded.join(", ")})` : ""}` }
        }
        const managed = found.right
        if (!managed.enabled) {
          return { problem: `instance '${instance}' is disabled${managed.disabledReason !== undefined ? ` (${managed.disabledReason})` : ""}; enable it first` }
        }
        let actions = declared.get(managed.plugin)
        if (actions === undefined) {
          actions = new Set(yield* Effect.orElseSucceed(manager.actions(instance), () => [] as ReadonlyArray<string>))
          declared.set(managed.plugin, actions)
        }
        if (!actions.has(action)) {
          return { problem: `instance '${instance}' (plugin ${managed.plugin}) declares no action '${action}'; it declares: ${[...actions].join(", ") || "none"}` }
        }
        return { plugin: managed.plugin }
      })

    const timeoutMillisOf = (timeout: Duration.DurationInput | undefined): number | undefined | { problem: string } => {
      if (timeout === undefined) return undefined
      const decoded = Duration.decodeUnknown(timeout)
      if (Option.isNone(decoded)) return { problem: `timeout must be a duration, got ${typeof timeout === "string" ? JSON.stringify(timeout) : typeof timeout}` }
      const millis = Duration.toMillis(decoded.value)
      const problem = timeoutProblem(millis)
      return problem === undefined ? millis : { problem }
    }

    /** Makes a pending entry of an already-checked job and lets a lane see it. */
    const enqueue = (job: Job, plugin: string): Entry => {
      const entry: Entry = {
        job,
        seq: submissions++,
        plugin,
        done: undefined,
        logs: undefined,
        fiber: undefined,
        canceller: undefined,
        cancelling: false,
        cancelStarted: false,
        cancelSettled: undefined,
        callStarted: false,
        finished: false,
      }
      live.set(job.id, entry)
      if (job.idempotencyKey !== undefined) keys.set(job.idempotencyKey, job.id)
      insertPending(entry)
      return entry
    }

    const insertPending = (entry: Entry) => {
      pending.splice(insertionIndexBy(pending, runKey(entry), runKey), 0, entry)
      tokens.unsafeOffer(undefined)
    }

    /** Takes a pending job out of the run order (or out of the held ones); false when it was in neither. */
    const removePending = (entry: Entry): boolean => {
      const index = pending.indexOf(entry)
      if (index >= 0) {
        pending.splice(index, 1)
        return true
      }
      const list = held.get(entry.job.instance)
      const at = list?.indexOf(entry) ?? -1
      if (at < 0) return false
      list!.splice(at, 1)
      if (list!.length === 0) held.delete(entry.job.instance)
      return true
    }

    const hold = (entry: Entry) => {
      const list = held.get(entry.job.instance) ?? []
      list.push(entry)
      held.set(entry.job.instance, list)
      setBlockReason(entry, `instance '${entry.job.instance}' is not loaded; the job waits until it is`)
    }

    /** The instance was loaded: its held jobs take their places in the run order again. */
    const release = (instance: string) => {
      const list = held.get(instance)
      if (list === undefined) return
      held.delete(instance)
      for (const entry of list) {
        setBlockReason(entry, undefined)
        insertPending(entry)
      }
    }

    const pendingInOrder = (): Array<Entry> => {
      if (held.size === 0) return [...pending]
      return [...pending, ...[...held.values()].flat()].sort((a, b) => compareRunOrder(runKey(a), runKey(b)))
    }

    /** Checks, journals (pending) and queues a job; the id once its pending record is written. */
    const submitChecked = (request: SubmitJob, sequence?: { readonly id: SequenceId; readonly index: number }): Effect.Effect<JobId, JobRefused> =>
      Effect.gen(function* () {
        if (closing) return yield* refuse("the queue is shutting down")
        const priority = request.priority ?? 0
        const badPriority = priorityProblem(priority)
        if (badPriority !== undefined) return yield* refuse(badPriority)
        const timeoutMillis = timeoutMillisOf(request.timeout)
        if (typeof timeoutMillis === "object") return yield* refuse(timeoutMillis.problem)
        const checked = yield* instanceProblem(request.instance, request.action)
        if ("problem" in checked) return yield* refuse(checked.problem)
        // The input is journaled and sent to a worker as JSON: what JSON cannot carry is refused now, not lost later.
        const badInput = jsonValueProblem(request.input)
        if (badInput !== undefined) return yield* refuse(`the input is not a JSON value: ${describeJsonValueProblem(badInput)}`)
        const now = Date.now()
        const job: Job = {
          id: newJobId(now),
          instance: request.instance,
          action: request.action,
          input: request.input,
          priority,
          status: "pending",
          submittedAt: now,
          progress: -1,
          retryCount: 0,
          ...(request.idempotencyKey !== undefined ? { idempotencyKey: request.idempotencyKey } : {}),
          ...(timeoutMillis !== undefined ? { timeoutMillis } : {}),
          ...(sequence !== undefined ? { sequence } : {}),
        }
        // Durable before it is accepted: a job the journal could not hold is refused, never queued on a promise the disk did not keep.
        if (Option.isSome(journal)) {
          yield* Effect.mapError(journal.value.write([job]), (error) =>
            refuse(`the job journal could not be written, so nothing was queued: ${error.message}`),
          )
        }
        enqueue(job, checked.plugin)
        if (heard()) publish({ _tag: "submitted", ...common(job), instance: job.instance, action: job.action, priority })
        return job.id
      })

    const knownKey = (key: string): Effect.Effect<JobId | undefined> =>
      Effect.gen(function* () {
        const known = keys.get(key)
        if (known !== undefined) return known
        if (Option.isNone(journal)) return undefined
        const found = yield* Effect.orElseSucceed(journal.value.findByKey(key), () => undefined)
        return found?.id
      })

    const submit = (request: SubmitJob): Effect.Effect<JobId, JobRefused> =>
      request.idempotencyKey === undefined
        ? submitChecked(request)
        : keyLock.withPermits(1)(
            Effect.flatMap(knownKey(request.idempotencyKey), (known) => (known !== undefined ? Effect.succeed(known) : submitChecked(request))),
          )

    // ---- Running ----

    const isTransient = (failure: unknown) => isPluginFailure(failure) && categoryOf(failure) === "transient"

    const jobErrorOf = (entry: Entry, failure: unknown): JobError => {
      const context = { plugin: entry.plugin, instance: entry.job.instance, time: new Date() }
      const error = toJobError(failure, context)
      // Manager refusals (InstanceNotLoaded, PluginDisabled) are not plugin failures: keep their own tag and message.
      if (!isPluginFailure(failure) && typeof failure === "object" && failure !== null && "_tag" in failure && typeof failure._tag === "string") {
        return new JobError({ ...error, tag: failure._tag, ...("message" in failure && typeof failure.message === "string" ? { message: failure.message } : {}) })
      }
      return error
    }

    const capReasonOf = (entry: Entry, managed: ManagedInstance) =>
      managed.running >= managed.maxConcurrent
        ? `instance '${entry.job.instance}' is running ${managed.running} of its ${managed.maxConcurrent} calls at once; the job waits for a slot`
        : undefined

    /** The instance as its lane just read it (first attempt), else read now. */
    const capReason = (entry: Entry, known: ManagedInstance | undefined) =>
      known !== undefined
        ? Effect.succeed(capReasonOf(entry, known))
        : Effect.map(Effect.option(manager.get(entry.job.instance)), (managed) => (Option.isSome(managed) ? capReasonOf(entry, managed.value) : undefined))

    /** One try of the job's call: its own span, its progress, its block reason, its cancellation observed. */
    const attemptOnce = (entry: Entry, attempt: number, known: ManagedInstance | undefined) =>
      Effect.gen(function* () {
        entry.callStarted = false
        entry.cancelStarted = false
        entry.cancelSettled = undefined
        const reason = yield* capReason(entry, known)
        if (reason !== undefined && !entry.callStarted) setBlockReason(entry, reason)
        let settled: Deferred.Deferred<"stopped" | "killed"> | undefined
        const onCancel = (progress: CancelProgress) => {
          if (progress === "started") {
            // Only a cancellation the queue asked for is followed (a timeout's is the worker's business).
            if (entry.cancelling) entry.cancelSettled = settled = Deferred.unsafeMake(FiberId.none)
            entry.cancelStarted = settled !== undefined
          } else if (settled !== undefined) Deferred.unsafeDone(settled, Exit.succeed(progress))
        }
        const job = entry.job
        return yield* manager
          .execute(job.instance, job.action, job.input, {
            ...(job.timeoutMillis !== undefined ? { timeout: Duration.millis(job.timeoutMillis) } : {}),
            onProgress: (report) => progressed(entry, report.fraction, report.message),
            onStarted: () => {
              entry.callStarted = true
              setBlockReason(entry, undefined)
            },
            onRetry: (next, failure) => {
              setJob(entry, { ...entry.job, retryCount: entry.job.retryCount + 1 })
              if (heard()) publish({ _tag: "retryStarted", ...common(entry.job), attempt: next, by: "eviction", failure, delayMillis: 0 })
            },
            cancel: { graceMillis: cancelTimeoutMillis, onCancel },
          })
          .pipe((call) =>
            // A span costs microseconds per job: only when a tracer was installed (as Instance.invoke does).
            Effect.withFiberRuntime<unknown, CallFailure>((fiber) =>
              fiber.currentTracer === defaultTracer
                ? call
                : Effect.withSpan(call, "plinth.job", {
                    attributes: { "plinth.job.id": job.id, "plinth.instance": job.instance, "plinth.action": job.action, "plinth.attempt": attempt },
                    captureStackTrace: false,
                  }),
            ),
          )
      })

    const progressed = (entry: Entry, fraction: number, message: string | undefined) => {
      if (entry.finished || entry.cancelling) return
      if (entry.job.progress === fraction && entry.job.statusMessage === message) return
      const { statusMessage: _m, ...rest } = entry.job
      setJob(entry, { ...rest, progress: fraction, ...(message !== undefined ? { statusMessage: message } : {}) })
      if (heard()) publish({ _tag: "progressChanged", ...common(entry.job), progress: fraction, ...(message !== undefined ? { message } : {}) })
    }

    /**
     * While a job runs, its worker's lines go to its log, bounded (the oldest
     * dropped), and its worker is sampled every `snapshotInterval`
     * (JobObservation). Both are shared, not per job: one reader of lines per
     * instance, taken in the queue's scope the first time a job runs on it,
     * hands each line to the jobs running there (a line older than a job's
     * start is not its); one sampler samples each busy instance once a tick.
     * A job then costs a set insertion, not a subscription and two fibers.
     */
    const watchers = new Map<string, Set<Entry>>()

    const appendLines = (entry: Entry, taken: Iterable<JobLogLine>) => {
      const startedAt = entry.job.startedAt ?? 0
      for (const line of taken) {
        if (line.at < startedAt) continue
        const logs = (entry.logs ??= [])
        logs.push(line)
        if (logs.length > maxLogLines) logs.splice(0, logs.length - maxLogLines)
      }
    }

    /** Adds the job to its instance's line reader, starting the reader (subscribed before the job's call starts) if there is none. */
    const watch = (entry: Entry): Effect.Effect<void> => {
      if (Option.isNone(observation)) return Effect.void
      const instance = entry.job.instance
      const existing = watchers.get(instance)
      if (existing !== undefined) {
        existing.add(entry)
        return Effect.void
      }
      const watching = new Set<Entry>([entry])
      watchers.set(instance, watching)
      return Effect.flatMap(Scope.extend(observation.value.lines(instance), queueScope), (queue) =>
        Effect.asVoid(
          Effect.forkIn(
            Effect.forever(
              Effect.flatMap(Queue.takeBetween(queue, 1, 1000), (taken) =>
                Effect.sync(() => {
                  for (const job of watching) appendLines(job, taken)
                }),
              ),
            ).pipe(
              // Its source ended (say the instance was unloaded): the next job on the instance starts a new reader.
              Effect.ensuring(Effect.sync(() => watchers.get(instance) === watching && watchers.delete(instance))),
            ),
            queueScope,
          ),
        ),
      )
    }

    const unwatch = (entry: Entry) => void watchers.get(entry.job.instance)?.delete(entry)

    const sampleBusyInstances = Effect.suspend(() => {
      if (Option.isNone(observation)) return Effect.void
      const busy = new Map<string, Array<Entry>>()
      for (const entry of live.values()) {
        if (entry.job.status !== "running" || entry.finished) continue
        const list = busy.get(entry.job.instance)
        if (list === undefined) busy.set(entry.job.instance, [entry])
        else list.push(entry)
      }
      return Effect.forEach(
        busy,
        ([instance, entries]) =>
          Effect.map(observation.value.sample(instance), (taken) => {
            if (Option.isNone(taken)) return
            const now = taken.value
            for (const entry of entries) {
              if (entry.finished) continue
              const previous = entry.job.lastSnapshot
              const cpuPercent =
                previous !== undefined && previous.pid === now.pid && now.at > previous.at
                  ? Math.max(0, ((now.cpuMillis - previous.cpuMillis) / (now.at - previous.at)) * 100)
                  : undefined
              const snapshot = { at: now.at, pid: now.pid, rssBytes: now.rssBytes, cpuMillis: now.cpuMillis, ...(cpuPercent !== undefined ? { cpuPercent } : {}) }
              setJob(entry, { ...entry.job, lastSnapshot: snapshot })
              if (heard()) publish({ _tag: "resourceSnapshot", ...common(entry.job), snapshot })
            }
          }),
        { discard: true },
      )
    })

    /**
     * A job's own end, from its lane. With a journal, the lane carries the
     * finished record to its next write: when the next job is already
     * pending, its running record and this one are one write (one commit
     * round trip per job, not two, and no fiber per job end); when none is,
     * the lane writes it alone before it waits. Either way the job is
     * announced and handed to its waiters only once its record is committed.
     * It is marked finished at once, so no cancel can reach the lane's next job.
     */
    const ended = (lane: LaneState, entry: Entry, to: "completed" | "failed", patch: Partial<Job>): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (Option.isNone(journal)) return finishMarked(entry, to, patch)
        const record = finishRecord(entry, to, patch)
        if (record !== undefined) lane.carry = record
        return Effect.void
      })

    /** Journals and announces the lane's carried finished job, if any (uninterruptible: once taken, a carried job is always settled). */
    const flushCarry = (lane: LaneState): Effect.Effect<void> =>
      Effect.uninterruptible(
        Effect.suspend(() => {
          const carried = lane.carry
          if (carried === undefined) return Effect.void
          lane.carry = undefined
          return Effect.zipRight(journalWrite([carried.job]), carried.settle)
        }),
      )

    /**
     * The job's running record, with the lane's carried finished record when
     * there is one (then settled); the running record's write error, if any.
     * Uninterruptible: a cancel arriving meanwhile waits for one commit, and
     * the carried job is never left unannounced.
     */
    const recordRunning = (lane: LaneState, entry: Entry, journalService: JobJournal["Type"]) =>
      Effect.uninterruptible(
        Effect.gen(function* () {
          const carried = lane.carry
          lane.carry = undefined
          const written = (jobs: ReadonlyArray<Job>) => Effect.flip(journalService.write(jobs)).pipe(Effect.option)
          if (carried === undefined) return yield* written([entry.job])
          let unrecorded = yield* written([carried.job, entry.job])
          // Written together they failed together: each on its own, so that one record's fault is not the other's.
          if (Option.isSome(unrecorded)) {
            yield* journalWrite([carried.job])
            unrecorded = yield* written([entry.job])
          }
          yield* carried.settle
          return unrecorded
        }),
      )

    /** The job's attempts, retried while they fail transiently, on its lane. Cancellation ends it from outside. */
    const runJob = (lane: LaneState, entry: Entry, managed: ManagedInstance): Effect.Effect<void> =>
      Effect.gen(function* () {
        if (Option.isSome(journal)) {
          // Not journaled as running, a job that then outlived a crash would be run again: only a job whose key says that is safe may start.
          const unrecorded = yield* recordRunning(lane, entry, journal.value)
          if (Option.isSome(unrecorded)) {
            yield* Effect.logWarning(`the job journal could not be written: ${unrecorded.value.message}`)
            if (entry.job.idempotencyKey === undefined) return yield* ended(lane, entry, "failed", { error: jobErrorOf(entry, unrecorded.value) })
          }
        }
        yield* watch(entry)
        // Made at the first transient failure: most jobs never need one.
        let driver: Schedule.ScheduleDriver<Duration.Duration, unknown> | undefined
        let attempt = 1
        for (;;) {
          const exit = yield* Effect.exit(attemptOnce(entry, attempt, attempt === 1 ? managed : undefined))
          if (entry.cancelling) return
          if (Exit.isSuccess(exit)) return yield* ended(lane, entry, "completed", { result: exit.value, progress: 1 })
          const failure = Option.getOrElse(Cause.failureOption(exit.cause), () => Cause.squash(exit.cause))
          if (!isTransient(failure) || attempt > maxRetries) return yield* ended(lane, entry, "failed", { error: jobErrorOf(entry, failure) })
          const retryAfter = isPluginFailure(failure) && failure._tag === "PluginTransientError" ? failure.retryAfterSeconds : undefined
          let delayMillis: number
          if (retryAfter !== undefined) {
            delayMillis = Math.max(0, retryAfter * 1000)
            yield* Effect.sleep(Duration.millis(delayMillis))
          } else {
            driver ??= yield* Schedule.driver(Schedule.delays(retrySchedule))
            const next = yield* Effect.option(driver.next(failure))
            if (Option.isNone(next)) return yield* ended(lane, entry, "failed", { error: jobErrorOf(entry, failure) })
            delayMillis = Duration.toMillis(next.value)
          }
          if (entry.cancelling) return
          attempt++
          setJob(entry, { ...entry.job, retryCount: entry.job.retryCount + 1 })
          if (heard()) publish({
            _tag: "retryStarted",
            ...common(entry.job),
            attempt,
            by: "queue",
            failure: isPluginFailure(failure) ? `${failure._tag}: ${failure.message}` : String(failure),
            delayMillis,
          })
        }
      })

    /**
     * A lane: takes a token, then the first pending job, and runs it; then the
     * next. Cancelling a running job interrupts its lane (that is what stops
     * the call), and the canceller starts a new lane once the cancellation is
     * over: a forced cancellation keeps its lane's place until the fresh worker
     * is up, so the next job does not start on a dying worker.
     */
    const makeLane = (): Effect.Effect<void> => {
      const state: LaneState = { carry: undefined }
      // Carrying a finished record, the lane takes a job only if one is there; else it writes the record before it waits.
      const nextToken = Option.isNone(journal)
        ? Queue.take(tokens)
        : Effect.suspend(() =>
            state.carry === undefined
              ? Queue.take(tokens)
              : Effect.flatMap(Queue.poll(tokens), (token) => (Option.isSome(token) ? Effect.void : Effect.zipRight(flushCarry(state), Queue.take(tokens)))),
          )
      return Effect.forever(
        Effect.gen(function* () {
          yield* nextToken
          const entry = pending.shift()
          if (entry === undefined) return
          const managed = yield* Effect.option(manager.get(entry.job.instance))
          // Cancelled while the lane looked its instance up: it has already ended.
          if (entry.finished || entry.cancelling) return
          if (Option.isNone(managed)) return hold(entry)
          changeState(entry, "running", { startedAt: Date.now() })
          const sequence = entry.job.sequence
          if (sequence !== undefined) yield* sequenceStepRunning(sequence.id)
          // Cancelled while its sequence was being journaled: the canceller has ended it; no call starts.
          if (entry.cancelling) return
          entry.fiber = yield* Effect.withFiberRuntime<Fiber.RuntimeFiber<void>>((fiber) => Effect.succeed(fiber as Fiber.RuntimeFiber<void>))
          yield* runJob(state, entry, managed.value)
          // Its canceller interrupts this lane and starts another: wait for it here, so this lane takes nothing else.
          if (entry.cancelling) yield* Effect.never
        }),
      ).pipe(
        // Interrupted (a cancel, or shutdown) while carrying a finished job: it is journaled and announced all the same.
        Effect.ensuring(flushCarry(state)),
      )
    }
    const lanes = new Set<Fiber.RuntimeFiber<void>>()
    const startLane = Effect.suspend(() => {
      if (closing) return Effect.void
      return Effect.map(Effect.forkDaemon(makeLane()), (fiber) => {
        lanes.add(fiber)
        fiber.addObserver(() => lanes.delete(fiber))
      })
    })

    // ---- Cancelling ----

    /**
     * A running job: interrupt its call (the worker is told to stop, with a
     * grace of `cancelTimeout` for this call); if the worker reports the call
     * stopped, the job ends cancelled after "cooperative" alone. If it does not
     * (the worker was killed when the grace ran out, or was already gone), the
     * phases go on: "force", "reloading" while the manager gives the instance a
     * fresh worker, then "completed".
     */
    const cancelRunning = (entry: Entry) =>
      Effect.gen(function* () {
        setJob(entry, { ...entry.job, cancelRequestedAt: Date.now() })
        setPhase(entry, "cooperative")
        const ownLane = entry.fiber
        if (ownLane !== undefined) yield* Fiber.interrupt(ownLane)
        const outcome = entry.cancelStarted && entry.cancelSettled !== undefined
          ? yield* Deferred.await(entry.cancelSettled).pipe(
              Effect.timeoutTo({ duration: Duration.millis(cancelTimeoutMillis + KILL_MARGIN_MILLIS), onTimeout: () => "killed" as const, onSuccess: (o) => o }),
            )
          : ("stopped" as const)
        if (outcome === "killed") {
          setPhase(entry, "force")
          setPhase(entry, "reloading")
          yield* manager.reload(entry.job.instance).pipe(
            Effect.catchAll((error) => Effect.logWarning(`after cancelling job ${entry.job.id}, instance '${entry.job.instance}' could not be reloaded: ${error.message}`)),
          )
        }
        setPhase(entry, "completed")
        yield* finish(entry, "cancelled")
        // The job's lane was interrupted to stop its call: its place is free again now.
        if (ownLane !== undefined) yield* startLane
      })

    const cancelEntry = (entry: Entry): Effect.Effect<boolean> =>
      Effect.suspend(() => {
        if (entry.finished || entry.cancelling) return Effect.succeed(false)
        entry.cancelling = true
        if (entry.job.status === "pending") {
          // Out of the run order (or of the held jobs); a lane may also have just taken it, and checks `cancelling`.
          removePending(entry)
          return Effect.as(finish(entry, "cancelled", { cancelRequestedAt: Date.now() }), true)
        }
        return Effect.map(Effect.forkDaemon(cancelRunning(entry)), (fiber) => {
          entry.canceller = fiber
          return true
        })
      })

    const cancel = (id: JobId) =>
      Effect.suspend(() => {
        const entry = live.get(id)
        return entry === undefined ? Effect.succeed(false) : cancelEntry(entry)
      })

    const reorder = (id: JobId, priority: number) =>
      Effect.suspend(() => {
        const entry = live.get(id)
        if (entry === undefined || entry.job.status !== "pending" || entry.cancelling || priorityProblem(priority) !== undefined) return Effect.succeed(false)
        const wasHeld = pending.indexOf(entry) < 0
        if (!removePending(entry)) return Effect.succeed(false)
        const from = entry.job.priority
        setJob(entry, { ...entry.job, priority })
        if (wasHeld) {
          const list = held.get(entry.job.instance) ?? []
          list.push(entry)
          held.set(entry.job.instance, list)
        } else pending.splice(insertionIndexBy(pending, runKey(entry), runKey), 0, entry)
        if (heard()) publish({ _tag: "priorityChanged", ...common(entry.job), from, to: priority })
        return Effect.as(journalWrite([entry.job]), true)
      })

    // ---- Reading ----

    const findJob = (id: JobId): Effect.Effect<Option.Option<Job>> =>
      Effect.suspend(() => {
        const entry = live.get(id)
        if (entry !== undefined) return Effect.succeed(Option.some(entry.job))
        const archived = archive.get(id)
        if (archived !== undefined) return Effect.succeed(Option.some(archived.job))
        if (Option.isNone(journal)) return Effect.succeed(Option.none())
        return Effect.map(Effect.orElseSucceed(journal.value.find(id), () => undefined), Option.fromNullable)
      })

    const wait = (id: JobId): Effect.Effect<Job, JobNotFound> =>
      Effect.suspend(() => {
        const entry = live.get(id)
        if (entry !== undefined) {
          // A job that has just finished (its end being journaled) is archived only after: its waiter is told by finish.
          entry.done ??= Deferred.unsafeMake<Job>(FiberId.none)
          return Deferred.await(entry.done)
        }
        return Effect.flatMap(findJob(id), (found) =>
          Option.isSome(found) && isTerminal(found.value.status) ? Effect.succeed(found.value) : Effect.fail(new JobNotFound({ job: id })),
        )
      })

    const running = Effect.sync(() => [...live.values()].filter((e) => e.job.status === "running").map((e) => e.job))

    const stats = Effect.sync(() => {
      let runningCount = 0
      for (const entry of live.values()) if (entry.job.status === "running") runningCount++
      let heldCount = 0
      for (const list of held.values()) heldCount += list.length
      return { pending: pending.length + heldCount, running: runningCount, ...counts, throughput: throughput.rate(Date.now()) }
    })

    const logs = (id: JobId) =>
      Effect.suspend(() => {
        const entry = live.get(id)
        if (entry !== undefined) return Effect.succeed([...(entry.logs ?? [])])
        const archived = archive.get(id)
        if (archived !== undefined) return Effect.succeed([...archived.logs])
        return Effect.flatMap(findJob(id), (found) => (Option.isSome(found) ? Effect.succeed([] as Array<JobLogLine>) : Effect.fail(new JobNotFound({ job: id }))))
      })

    // ---- Sequences ----

    const sequenceArchive: Array<string> = []
    const finishSequence = (entry: SequenceEntry) =>
      Effect.gen(function* () {
        if (!(yield* Deferred.succeed(entry.done, entry.sequence))) return
        sequenceArchive.push(entry.sequence.id)
        while (sequenceArchive.length > archiveLimit) sequences.delete(sequenceArchive.shift()!)
      })

    const sequenceStepRunning = (id: SequenceId) =>
      Effect.suspend(() => {
        const entry = sequences.get(id)
        if (entry === undefined || entry.sequence.status !== "pending") return Effect.void
        entry.sequence = stepStarted(entry.sequence)
        return journalSequence(entry.sequence)
      })

    const submitStep = (entry: SequenceEntry, index: number): Effect.Effect<void> =>
      Effect.gen(function* () {
        // Shutting down: the journal says which step is next, and the next start queues it (recovery).
        if (closing) return
        const step = entry.sequence.steps[index]!
        const submitted = yield* Effect.either(
          submitChecked(
            {
              instance: step.instance,
              action: step.action,
              input: step.input,
              priority: entry.sequence.priority,
              ...(step.timeoutMillis !== undefined ? { timeout: Duration.millis(step.timeoutMillis) } : {}),
              ...(step.idempotencyKey !== undefined ? { idempotencyKey: step.idempotencyKey } : {}),
            },
            { id: entry.sequence.id, index },
          ),
        )
        if (submitted._tag === "Right") {
          entry.current = submitted.right
          return
        }
        // The step was fine at submission but cannot be queued now (its instance was unloaded or disabled since): it fails without a job.
        entry.current = undefined
        const advance = stepEnded(
          entry.sequence,
          {
            index,
            job: newJobId(Date.now()),
            status: "failed",
            error: new JobError({
              category: "input",
              tag: "JobRefused",
              message: submitted.left.message,
              retriable: false,
              plugin: step.instance,
              instance: step.instance,
              time: new Date(),
            }),
          },
          Date.now(),
        )
        yield* advanceSequence(entry, advance.sequence, advance.next)
      })

    const advanceSequence = (entry: SequenceEntry, sequence: JobSequence, next: number | undefined): Effect.Effect<void> =>
      Effect.gen(function* () {
        entry.sequence = sequence
        yield* journalSequence(sequence)
        if (next !== undefined) return yield* submitStep(entry, next)
        if (isTerminal(sequence.status)) yield* finishSequence(entry)
      })

    const sequenceStepEnded = (job: Job): Effect.Effect<void> =>
      Effect.gen(function* () {
        const position = job.sequence!
        const entry = sequences.get(position.id)
        if (entry === undefined || entry.current !== job.id) return
        entry.current = undefined
        const advance = stepEnded(
          entry.sequence,
          {
            index: position.index,
            job: job.id,
            status: job.status,
            ...(job.result !== undefined ? { result: job.result } : {}),
            ...(job.error !== undefined ? { error: job.error } : {}),
          },
          Date.now(),
        )
        if (heard()) publish({ _tag: "sequenceAdvanced", job: job.id, at: Date.now(), sequence: position.id, index: position.index, stepStatus: job.status, status: advance.sequence.status })
        yield* advanceSequence(entry, advance.sequence, advance.next)
      })

    const submitSequence = (steps: ReadonlyArray<SequenceStep>, sequenceOptions: SubmitSequenceOptions = {}): Effect.Effect<SequenceId, JobRefused> =>
      Effect.gen(function* () {
        if (closing) return yield* refuse("the queue is shutting down")
        const priority = sequenceOptions.priority ?? 0
        const badPriority = priorityProblem(priority)
        if (badPriority !== undefined) return yield* refuse(badPriority)
        for (const [index, step] of steps.entries()) {
          const checked = yield* instanceProblem(step.instance, step.action)
          if ("problem" in checked) return yield* refuse(`step ${index + 1}: ${checked.problem}`)
          const badInput = jsonValueProblem(step.input)
          if (badInput !== undefined) return yield* refuse(`step ${index + 1}: the input is not a JSON value: ${describeJsonValueProblem(badInput)}`)
          if (step.timeoutMillis !== undefined) {
            const problem = timeoutProblem(step.timeoutMillis)
            if (problem !== undefined) return yield* refuse(`step ${index + 1}: ${problem}`)
          }
        }
        const now = Date.now()
        const sequence = newSequence(newSequenceId(now), steps, sequenceOptions.mode ?? "failFast", priority, now)
        const entry: SequenceEntry = { sequence, done: Deferred.unsafeMake(FiberId.none), current: undefined }
        sequences.set(sequence.id, entry)
        yield* journalSequence(sequence)
        if (steps.length === 0) yield* finishSequence(entry)
        else yield* submitStep(entry, 0)
        return sequence.id
      })

    const cancelSequence = (id: SequenceId) =>
      Effect.gen(function* () {
        const entry = sequences.get(id)
        if (entry === undefined || isTerminal(entry.sequence.status)) return false
        entry.sequence = sequenceCancelled(entry.sequence, Date.now())
        yield* journalSequence(entry.sequence)
        const current = entry.current !== undefined ? live.get(entry.current) : undefined
        // The step's job ends cancelled, its result is recorded and the sequence's waiters hear once it has (sequenceStepEnded).
        if (current === undefined) yield* finishSequence(entry)
        else yield* cancelEntry(current)
        return true
      })

    const getSequence = (id: SequenceId) => Effect.sync(() => Option.map(Option.fromNullable(sequences.get(id)), (e) => e.sequence))
    const waitSequence = (id: SequenceId): Effect.Effect<JobSequence, JobNotFound> =>
      Effect.suspend(() => {
        const entry = sequences.get(id)
        return entry === undefined ? Effect.fail(new JobNotFound({ job: id })) : Deferred.await(entry.done)
      })

    // ---- Recovery (journal) ----

    const pluginOf = (instance: string) => Effect.map(Effect.option(manager.get(instance)), (m) => (Option.isSome(m) ? m.value.plugin : instance))

    if (Option.isSome(journal)) {
      // A journal that cannot be read stops the start: starting empty would drop every job it holds without a word.
      const recovered = yield* journal.value.recover(maxHistory)
      for (const job of [...recovered.history].reverse()) archiveJob(job, [])
      const ended: Array<Job> = []
      for (const job of recovered.unfinished) {
        const plugin = yield* pluginOf(job.instance)
        const outcome = afterInterruption(job, plugin, Date.now())
        if (outcome._tag === "requeue") {
          if (outcome.job !== job) yield* journalWrite([outcome.job])
          enqueue(outcome.job, plugin)
        } else {
          yield* journalWrite([outcome.job])
          archiveJob(outcome.job, [])
          counts.failed++
          ended.push(outcome.job)
        }
      }
      for (const sequence of recovered.sequences) {
        const entry: SequenceEntry = { sequence, done: Deferred.unsafeMake(FiberId.none), current: undefined }
        sequences.set(sequence.id, entry)
        const member = [...live.values()].find((e) => e.job.sequence?.id === sequence.id && e.job.sequence.index === sequence.current)
        const endedMember = ended.find((j) => j.sequence?.id === sequence.id && j.sequence.index === sequence.current)
        if (member !== undefined) entry.current = member.job.id
        else if (endedMember !== undefined) {
          entry.current = endedMember.id
          yield* sequenceStepEnded(endedMember)
        } else if (isTerminal(sequence.status)) yield* finishSequence(entry)
        else {
          const finishedStep = recovered.history.find((j) => j.sequence?.id === sequence.id && j.sequence.index === sequence.current)
          if (finishedStep !== undefined) {
            entry.current = finishedStep.id
            yield* sequenceStepEnded(finishedStep)
          } else yield* submitStep(entry, sequence.current)
        }
      }
    }

    // ---- Manager events: admission blocks for jobs waiting to start ----

    const managerEvents = yield* manager.subscribe
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.flatMap(Queue.take(managerEvents), (event) =>
          Effect.sync(() => {
            if (event._tag === "loaded") return release(event.instance)
            if (event._tag !== "admissionBlocked") return
            const reason = `instance '${event.instance}' waits to start: ${describeBlockReason(event.reason)}`
            for (const entry of live.values()) {
              if (entry.job.status === "running" && !entry.callStarted && !entry.cancelling && entry.job.instance === event.instance) setBlockReason(entry, reason)
            }
            // Jobs held for an instance being loaded wait for the same room.
            for (const entry of held.get(event.instance) ?? []) setBlockReason(entry, reason)
          }),
        ),
      ),
    )

    // ---- Lifetime ----

    for (let i = 0; i < concurrency; i++) yield* startLane
    // The first sample after one interval (Effect.schedule waits first): a job shorter than that costs no sample.
    if (Option.isSome(observation)) yield* Effect.forkScoped(Effect.schedule(sampleBusyInstances, Schedule.spaced(snapshotInterval)))

    /**
     * A clean shutdown: no new job starts; each running job's call is
     * interrupted and the job is re-queued (journaled pending) when its
     * idempotency key says a re-run is safe, otherwise it ends failed with
     * JobInterrupted, exactly as recovery after a crash would decide. Pending
     * jobs stay pending in the journal. Waiters on unfinished jobs are
     * interrupted; every subscription ends.
     */
    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        closing = true
        const runningEntries = [...live.values()].filter((e) => e.job.status === "running" && !e.finished)
        // Stopping the lanes interrupts the running jobs' calls (each worker is told to stop).
        yield* Fiber.interruptAll([...lanes])
        for (const entry of runningEntries) {
          if (entry.finished) continue
          if (entry.cancelling) {
            // Its cancellation was asked for: it ends cancelled, not re-run.
            if (entry.canceller !== undefined) yield* Fiber.interrupt(entry.canceller)
            yield* finish(entry, "cancelled")
            continue
          }
          const outcome = afterInterruption(entry.job, entry.plugin, Date.now())
          if (outcome._tag === "failed") {
            yield* finish(entry, "failed", { error: outcome.job.error! })
          } else {
            entry.finished = true
            yield* journalWrite([outcome.job])
            if (heard()) publish({ _tag: "stateChanged", ...common(entry.job), from: "running", to: "pending" })
          }
        }
        for (const entry of live.values()) if (entry.done !== undefined) yield* Deferred.interrupt(entry.done)
        for (const entry of sequences.values()) yield* Deferred.interrupt(entry.done)
        yield* hub.shutdown
      }),
    )

    const subscribe = (filter: EventFilter, subscribeOptions?: { readonly buffer?: number }) =>
      hub.subscribe(filter, subscribeOptions?.buffer ?? subscriberBuffer)

    /** A job's events end after the event that finished it (at once when it has already finished). */
    const events = (id: JobId): Stream.Stream<JobEvent> =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          const subscription = yield* subscribe({ _tag: "job", job: id })
          const now = yield* findJob(id)
          if (Option.isSome(now) && isTerminal(now.value.status)) return Stream.empty
          return subscription.events.pipe(Stream.takeUntil((event) => event._tag === "stateChanged" && isTerminal(event.to)))
        }),
      )

    return JobQueue.of({
      submit,
      reorder,
      cancel,
      get: findJob,
      wait,
      pending: Effect.sync(() => pendingInOrder().map((e) => e.job)),
      running,
      history: (limit) =>
        Effect.sync(() => {
          const n = Math.max(0, Math.min(limit ?? maxHistory, maxHistory, history.length))
          return n === 0 ? [] : history.slice(history.length - n).reverse()
        }),
      stats,
      logs,
      submitSequence,
      cancelSequence,
      getSequence,
      waitSequence,
      subscribe,
      events,
      sequenceEvents: (sequence) => Stream.unwrapScoped(Effect.map(subscribe({ _tag: "sequence", sequence }), (s) => s.events)),
      allEvents: Stream.unwrapScoped(Effect.map(subscribe({ _tag: "all" }), (s) => s.events)),
    })
  })

/** The job queue over the PluginManager in context; journaled when a JobJournal is provided too. Closing it shuts the queue down cleanly. */
export const JobQueueLive = (options: JobQueueOptions = {}): Layer.Layer<JobQueue, StoreUnavailable, PluginManager> =>
  Layer.scoped(JobQueue, makeJobQueue(options))
