import { Cause, Deferred, Duration, Effect, Exit, FiberId, Option, Schedule } from "effect"
import { categoryOf, isPluginFailure, JobError, toJobError } from "@plinth/domain"
import type { CancelProgress } from "../instance/WorkerConnection.js"
import type { CallFailure, ManagedInstance } from "../manager/PluginManager.js"
import { tracerInstalled } from "../observability/Tracing.js"
import type { Entry, LaneState, QueueState } from "./QueueState.js"
import type { LaneCarry } from "./LaneCarry.js"
import type { Watching } from "./Watching.js"

/* One job's attempts on its lane: each call through the manager, and the queue's retries of transient failures. */
export const makeAttempts = (q: QueueState, watching: Watching, carry: LaneCarry) => {
  const { manager, journal, cancelTimeoutMillis, maxRetries, retrySchedule, setJob, setBlockReason, heard, publish, common } = q

  const { progressed, watch } = watching
  const { ended, endedNow, recordRunning } = carry

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

  /**
   * One try of the job's call: its own span, its progress, its block reason, its cancellation observed.
   * The instance as its lane just read it (first attempt), else read now, says whether it waits for a slot.
   */
  const attemptOnce = (entry: Entry, attempt: number, known: ManagedInstance | undefined): Effect.Effect<unknown, CallFailure> =>
    known !== undefined
      ? call(entry, attempt, capReasonOf(entry, known))
      : Effect.flatMap(Effect.option(manager.get(entry.job.instance)), (managed) =>
          call(entry, attempt, Option.isSome(managed) ? capReasonOf(entry, managed.value) : undefined),
        )

  const call = (entry: Entry, attempt: number, reason: string | undefined): Effect.Effect<unknown, CallFailure> =>
    // One step reads the fiber for the tracer and starts the call.
    Effect.withFiberRuntime<unknown, CallFailure>((fiber) => {
      entry.callStarted = false
      entry.cancelStarted = false
      entry.cancelSettled = undefined
      if (reason !== undefined) setBlockReason(entry, reason)
      let settled: Deferred.Deferred<"stopped" | "killed"> | undefined
      const onCancel = (progress: CancelProgress) => {
        if (progress === "started") {
          // Only a cancellation the queue asked for is followed (a timeout's is the worker's business).
          if (entry.cancelling) entry.cancelSettled = settled = Deferred.unsafeMake(FiberId.none)
          entry.cancelStarted = settled !== undefined
        } else if (settled !== undefined) Deferred.unsafeDone(settled, Exit.succeed(progress))
      }
      const job = entry.job
      const called = manager.execute(job.instance, job.action, job.input, {
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
      // A span costs microseconds per job: only when a tracer was installed (as Instance.invoke does).
      return !tracerInstalled(fiber)
        ? called
        : Effect.withSpan(called, "plinth.job", {
            attributes: { "plinth.job.id": job.id, "plinth.instance": job.instance, "plinth.action": job.action, "plinth.attempt": attempt },
            captureStackTrace: false,
          })
    })

  /** The job's attempts, retried while they fail transiently, on its lane. Cancellation ends it from outside. To be called as the job starts. */
  const runJob = (lane: LaneState, entry: Entry, managed: ManagedInstance): Effect.Effect<void> => {
    if (Option.isNone(journal)) {
      // Watched at once (a job on an instance already read from costs a set insertion, no step), then the first attempt.
      const watched = watch(entry)
      return watched === Effect.void ? attempts(lane, entry, managed) : Effect.zipRight(watched, attempts(lane, entry, managed))
    }
    const journalService = journal.value
    return Effect.gen(function* () {
      // Not journaled as running, a job that then outlived a crash would be run again: only a job whose key says that is safe may start.
      const unrecorded = yield* recordRunning(lane, entry, journalService)
      if (Option.isSome(unrecorded)) {
        yield* Effect.logWarning(`the job journal could not be written: ${unrecorded.value.message}`)
        if (entry.job.idempotencyKey === undefined) return yield* ended(lane, entry, "failed", { error: jobErrorOf(entry, unrecorded.value) })
      }
      yield* watch(entry)
      yield* attempts(lane, entry, managed)
    })
  }

  /** The attempts, from the first: one frame per attempt for both outcomes, the retry's own steps only after a failure. */
  const attempts = (lane: LaneState, entry: Entry, managed: ManagedInstance): Effect.Effect<void> => {
    // Made at the first transient failure: most jobs never need one.
    let driver: Schedule.ScheduleDriver<Duration.Duration, unknown> | undefined
    const from = (attempt: number): Effect.Effect<void> =>
      Effect.matchCauseEffect(attemptOnce(entry, attempt, attempt === 1 ? managed : undefined), {
        onSuccess: (value) => (entry.cancelling ? Effect.void : endedNow(lane, entry, "completed", { result: value, progress: 1 })),
        onFailure: (cause) => (entry.cancelling ? Effect.void : afterFailure(cause, attempt)),
      })
    const afterFailure = (cause: Cause.Cause<CallFailure>, attempt: number): Effect.Effect<void> =>
      Effect.gen(function* () {
        const failure = Option.getOrElse(Cause.failureOption(cause), () => Cause.squash(cause))
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
        const nextAttempt = attempt + 1
        setJob(entry, { ...entry.job, retryCount: entry.job.retryCount + 1 })
        if (heard()) publish({
          _tag: "retryStarted",
          ...common(entry.job),
          attempt: nextAttempt,
          by: "queue",
          failure: isPluginFailure(failure) ? `${failure._tag}: ${failure.message}` : String(failure),
          delayMillis,
        })
        return yield* from(nextAttempt)
      })
    return from(1)
  }

  return { jobErrorOf, runJob }
}

export type Attempts = ReturnType<typeof makeAttempts>
