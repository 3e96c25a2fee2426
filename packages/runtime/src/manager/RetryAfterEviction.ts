import { Effect, Match } from "effect"
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

/**
 * Runs `attempt` and, while it fails with a memory shortage and retries are
 * left, evicts, replaces the worker and runs it again. The last failure comes
 * back with `attempts` set when there was more than one.
 */
export const withRetryAfterEviction = <A, E, W, RE>(
  scheduling: Scheduling,
  host: RetryHost<W, RE>,
  target: { readonly instance: string; readonly plugin: string; readonly action: string },
  attempt: Effect.Effect<A, E>,
): Effect.Effect<A, E | RE | MemoryShortage> => {
  if (scheduling.maxRetries === 0) return attempt
  const maxAttempts = scheduling.maxRetries + 1
  // The happy path pays one suspend and one catchAll: nothing else until a call runs short.
  const run = (n: number): Effect.Effect<A, E | RE | MemoryShortage> =>
    Effect.suspend(() => {
      const worker = host.currentWorker(target.instance)
      const began = Date.now()
      return Effect.catchAll(attempt, (failure): Effect.Effect<A, E | RE | MemoryShortage> =>
        !isMemoryShortage(failure)
          ? Effect.fail(failure)
          : n >= maxAttempts
            ? Effect.fail(n > 1 ? withAttempts(failure, n) : failure)
            : retry(n, failure, worker, began),
      )
    })
  const retry = (n: number, failure: MemoryShortage, worker: W | undefined, began: number) =>
    Effect.gen(function* () {
      const shortfallMiB = failure._tag === "PluginResourceError" ? memoryShortfallMiB(failure.shortfall) : undefined
      const choice = chooseEvictions({
        failing: { instance: target.instance, plugin: target.plugin },
        running: host.running(),
        shortfallMiB,
        policy: scheduling.policy,
      })
      const evicted = yield* host.evict(choice.instances, "retry", target.instance)
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
      yield* host.freshWorker(target.instance, worker)
      return yield* run(n + 1)
    })
  return run(1)
}
