import { Effect, Match, Stream } from "effect"
import {
  chooseEvictions,
  isPluginFailure,
  memoryShortfallMiB,
  PluginResourceError,
  WorkerKilled,
  WorkerOutOfMemory,
  type ManagerEvent,
  type RunningInstance,
} from "@plinth/domain"
import type { CallRecord } from "../observability/CallTrace.js"
import type { Scheduling } from "./Admission.js"

/*
 * Retry after eviction (issue 8 §4, ADR 0025 amended): a call that fails
 * because its worker ran short of memory is tried again on a fresh worker,
 * after stopping idle instances of other plugins (`chooseEvictions`), at most
 * `maxRetries` times. Only these three failures qualify; input, fatal and
 * cancelled calls are never retried, transient ones are the job queue's to
 * retry, and admission failures have already evicted what they could.
 */

export type MemoryShortage = PluginResourceError | WorkerKilled | WorkerOutOfMemory

export const isMemoryShortage = (failure: unknown): failure is MemoryShortage =>
  isPluginFailure(failure) &&
  (failure._tag === "PluginResourceError" || failure._tag === "WorkerKilled" || failure._tag === "WorkerOutOfMemory")

/** The failure with the number of attempts the manager made recorded on it. */
export const withAttempts = (failure: MemoryShortage, attempts: number): MemoryShortage =>
  Match.value(failure).pipe(
    Match.tagsExhaustive({
      PluginResourceError: (f) => new PluginResourceError({ message: f.message, ...(f.shortfall !== undefined ? { shortfall: f.shortfall } : {}), attempts }),
      WorkerKilled: (f) => new WorkerKilled({ plugin: f.plugin, exitCode: f.exitCode, signal: f.signal, attempts }),
      WorkerOutOfMemory: (f) => new WorkerOutOfMemory({ plugin: f.plugin, exitCode: f.exitCode, signal: f.signal, attempts }),
    }),
  )

/** The manager as a retry sees it. */
export interface RetryHost<Worker, E> {
  readonly running: () => ReadonlyArray<RunningInstance>
  readonly evict: (instances: ReadonlyArray<string>, cause: "admission" | "retry", forInstance: string) => Effect.Effect<ReadonlyArray<string>>
  /** The worker serving the instance now, to tell whether another caller already replaced it. */
  readonly currentWorker: (instance: string) => Worker | undefined
  /** A fresh worker for the instance with its saved config, unless `previous` was already replaced. */
  readonly freshWorker: (instance: string, previous: Worker | undefined) => Effect.Effect<void, E>
  readonly emit: (event: ManagerEvent) => void
  /** Writes a trace record (the manager's CallTrace, when it has one); its failures are ignored. */
  readonly trace: (record: CallRecord) => Effect.Effect<void>
}

/** What a retry is for; `onRetry` is told each retry as it starts (the caller's own correlation, e.g. a job's). */
export interface RetryTarget {
  readonly instance: string
  readonly plugin: string
  readonly action: string
  readonly onRetry?: ((attempt: number, failure: string) => void) | undefined
}

export interface RetryAfterEviction<RE> {
  /**
   * Runs `attempt` and, while it fails with a memory shortage and retries are
   * left, evicts, replaces the worker and runs it again. The last failure
   * comes back with `attempts` set when there was more than one.
   */
  readonly run: <A, E>(
    target: RetryTarget,
    attempt: Effect.Effect<A, E>,
  ) => Effect.Effect<A, E | RE | MemoryShortage>
  /**
   * As `run`, for a caller that runs the result at once, from inside an
   * effect already running (the manager's `execute`): the first attempt's
   * worker and start time are read now, not in a step of their own, and
   * `first` (the first attempt, built from what the caller already looked up)
   * runs instead of `attempt` the first time.
   */
  readonly runNow: <A, E>(
    target: RetryTarget,
    first: Effect.Effect<A, E>,
    attempt: Effect.Effect<A, E>,
  ) => Effect.Effect<A, E | RE | MemoryShortage>
  /**
   * As `run`, for a stream: an attempt that runs short of memory before it
   * has delivered anything is run again, on a fresh worker after eviction.
   * Once an element has gone to the caller the failure is the caller's: a
   * second attempt would deliver the first elements again.
   */
  readonly runStream: <A, E>(target: RetryTarget, attempt: Stream.Stream<A, E>) => Stream.Stream<A, E | RE | MemoryShortage>
}

export const makeRetryAfterEviction = <W, RE>(
  scheduling: Scheduling,
  host: RetryHost<W, RE>,
): RetryAfterEviction<RE> => {
  const maxAttempts = scheduling.maxRetries + 1
  /**
   * One replacement per failed worker: calls that failed together on one
   * worker (it died under all of them) share one eviction and one reload.
   */
  const replacing = new Map<string, Effect.Semaphore>()
  const replacementLock = (instance: string) => {
    let lock = replacing.get(instance)
    if (lock === undefined) replacing.set(instance, (lock = Effect.unsafeMakeSemaphore(1)))
    return lock.withPermits(1)
  }

  const run = <A, E>(
    target: RetryTarget,
    attempt: Effect.Effect<A, E>,
  ): Effect.Effect<A, E | RE | MemoryShortage> => {
    if (scheduling.maxRetries === 0) return attempt
    return Effect.suspend(() => tryNow(target, attempt, attempt, 1))
  }

  const runNow = <A, E>(target: RetryTarget, first: Effect.Effect<A, E>, attempt: Effect.Effect<A, E>): Effect.Effect<A, E | RE | MemoryShortage> =>
    scheduling.maxRetries === 0 ? first : tryNow(target, first, attempt, 1)

  /** Runs this try (the happy path pays one catchAll: nothing else until a call runs short). To be called as the try starts. */
  const tryNow = <A, E>(
    target: RetryTarget,
    thisTry: Effect.Effect<A, E>,
    attempt: Effect.Effect<A, E>,
    n: number,
  ): Effect.Effect<A, E | RE | MemoryShortage> => {
    const worker = host.currentWorker(target.instance)
    const began = Date.now()
    return Effect.catchAll(thisTry, (failure): Effect.Effect<A, E | RE | MemoryShortage> =>
      !isMemoryShortage(failure)
        ? Effect.fail(failure)
        : n >= maxAttempts
          ? Effect.fail(n > 1 ? withAttempts(failure, n) : failure)
          : Effect.zipRight(retry(target, n, failure, worker, began), Effect.suspend(() => tryNow(target, attempt, attempt, n + 1))),
    )
  }

  const retry = (target: RetryTarget, n: number, failure: MemoryShortage, worker: W | undefined, began: number) =>
    replacementLock(target.instance)(
      Effect.gen(function* () {
        // Another call's retry already replaced this worker (and evicted for it).
        const replaced = host.currentWorker(target.instance) !== worker
        const shortfallMiB = failure._tag === "PluginResourceError" ? memoryShortfallMiB(failure.shortfall) : undefined
        const evicted = replaced
          ? []
          : yield* host.evict(
              chooseEvictions({
                failing: { instance: target.instance, plugin: target.plugin },
                running: host.running(),
                shortfallMiB,
                policy: scheduling.policy,
              }).instances,
              "retry",
              target.instance,
            )
        host.emit({
          _tag: "retryStarted",
          plugin: target.plugin,
          instance: target.instance,
          at: Date.now(),
          action: target.action,
          attempt: n + 1,
          maxAttempts,
          failure: failure._tag,
          evicted: [...evicted],
        })
        target.onRetry?.(n + 1, failure._tag)
        yield* host.trace({
          at: new Date(began).toISOString(),
          plugin: target.plugin,
          instance: target.instance,
          action: target.action,
          durationMs: Date.now() - began,
          outcome: "failed",
          category: "resource",
          message: `${failure.message}; retrying on a fresh worker (attempt ${n + 1} of ${maxAttempts})${evicted.length > 0 ? ` after evicting ${evicted.join(", ")}` : ""}`,
          attempt: n,
        })
        if (!replaced) yield* host.freshWorker(target.instance, worker)
      }),
    )

  const runStream = <A, E>(target: RetryTarget, attempt: Stream.Stream<A, E>): Stream.Stream<A, E | RE | MemoryShortage> =>
    scheduling.maxRetries === 0 ? attempt : Stream.suspend(() => streamTry(target, attempt, 1))

  const streamTry = <A, E>(target: RetryTarget, attempt: Stream.Stream<A, E>, n: number): Stream.Stream<A, E | RE | MemoryShortage> => {
    const worker = host.currentWorker(target.instance)
    const began = Date.now()
    let delivered = false
    return attempt.pipe(
      Stream.mapChunks((chunk) => {
        if (chunk.length > 0) delivered = true
        return chunk
      }),
      Stream.catchAll((failure): Stream.Stream<A, E | RE | MemoryShortage> =>
        !isMemoryShortage(failure) || delivered
          ? Stream.fail(failure)
          : n >= maxAttempts
            ? Stream.fail(n > 1 ? withAttempts(failure, n) : failure)
            : Stream.unwrap(Effect.as(retry(target, n, failure, worker, began), Stream.suspend(() => streamTry(target, attempt, n + 1)))),
      ),
    )
  }

  return { run, runNow, runStream }
}
