import { totalmem } from "node:os"
import { Deferred, Duration, Effect, Exit, FiberId } from "effect"
import {
  AdmissionRefused,
  AdmissionTimeout,
  canonicalJson,
  decideAdmission,
  DEFAULT_ADMISSION_TIMEOUT,
  defaultBudgetMiB,
  expectedMemory,
  expectedMiB,
  type BlockReason,
  type Candidate,
  type ExpectedMemory,
  type ManagerEvent,
  type PluginManifest,
  type RunningInstance,
  type SchedulingPolicy,
} from "@plinth/domain"

/*
 * Scheduling applied (ADR 0025, amended): before any worker starts for the
 * manager (a load, a reload, a warm worker), the pure `decideAdmission` is
 * asked with what runs now, and its answer is carried out here: admit, stop
 * the idle instances it names, wait (queue) or refuse (safety). Decisions are
 * taken one at a time, and an admitted candidate counts as running (and busy)
 * until its worker has started, so two starts cannot both fit into the same
 * free memory.
 */

export interface SchedulingOptions {
  /** How starts are admitted against the memory budget; default `permissive` (ADR 0025 amendment). */
  readonly policy?: SchedulingPolicy
  /** The memory plugin workers may hold under `safety` and `queue`, in MiB; default half the machine's memory. */
  readonly memoryBudgetMiB?: number
  /** How long `queue` waits for a start to fit before `AdmissionTimeout`; default 5 minutes. */
  readonly admissionTimeout?: Duration.DurationInput
  /** Retries of a call that ran short of memory, each on a fresh worker after evicting idle ones; default 1, 0 for none. */
  readonly maxRetries?: number
}

export interface Scheduling {
  readonly policy: SchedulingPolicy
  readonly budgetMiB: number
  readonly admissionTimeoutMillis: number
  readonly maxRetries: number
}

export const DEFAULT_MAX_RETRIES = 1

export const resolveScheduling = (options: SchedulingOptions): Scheduling => ({
  policy: options.policy ?? "permissive",
  budgetMiB: options.memoryBudgetMiB ?? defaultBudgetMiB(totalmem() / 2 ** 20),
  admissionTimeoutMillis: Duration.toMillis(options.admissionTimeout ?? DEFAULT_ADMISSION_TIMEOUT),
  maxRetries: Math.max(0, Math.floor(options.maxRetries ?? DEFAULT_MAX_RETRIES)),
})

/**
 * What an instance of a plugin is expected to take: its declared
 * `resources.memoryMiB`, else a measured peak when the caller has one (from
 * the EmpiricalStore), else unknown (counted as 0, see `expectedMiB`).
 */
export const costOf = (plugin: { readonly manifest: PluginManifest }, measuredPeakMiB?: number): ExpectedMemory =>
  expectedMemory({ declaredMiB: plugin.manifest.resources?.memoryMiB, measuredPeakMiB })

/** The manager as admission sees it. */
export interface AdmissionHost {
  /** The workers running now (managed instances and warm workers). */
  readonly running: () => ReadonlyArray<RunningInstance>
  /**
   * Stops these idle instances and emits `evicted` for each; one that became
   * busy or is being changed meanwhile is left alone. Returns those stopped.
   */
  readonly evict: (instances: ReadonlyArray<string>, cause: "admission" | "retry", forInstance: string) => Effect.Effect<ReadonlyArray<string>>
  readonly emit: (event: ManagerEvent) => void
}

export interface Admission {
  /** Runs `start` once the candidate is admitted; fails with AdmissionRefused or AdmissionTimeout when it is not. */
  readonly admitted: <A, E, R>(candidate: Candidate, start: Effect.Effect<A, E, R>) => Effect.Effect<A, E | AdmissionRefused | AdmissionTimeout, R>
  /** To be called when memory may have been freed (a call ended, an instance stopped): waiting candidates look again. */
  readonly changed: () => void
  /** Admitted candidates whose workers are still starting: they count as running and busy. */
  readonly pending: () => ReadonlyArray<RunningInstance>
}

export const makeAdmission = (scheduling: Scheduling, host: AdmissionHost): Admission => {
  const decisions = Effect.unsafeMakeSemaphore(1)
  const pending = new Map<string, RunningInstance>()
  let signal = Deferred.unsafeMake<void>(FiberId.none)
  /** Whether a waiting candidate holds `signal`: every call's end reports here, and nothing is done for it unless one does. */
  let armed = false
  const changed = () => {
    if (!armed) return
    armed = false
    const fired = signal
    signal = Deferred.unsafeMake<void>(FiberId.none)
    Deferred.unsafeDone(fired, Exit.void)
  }
  const waitSignal = () => {
    armed = true
    return signal
  }

  type Outcome = { readonly _tag: "go" } | { readonly _tag: "wait"; readonly reason: BlockReason; readonly signal: Deferred.Deferred<void> }

  /** One decision, carried out: after evicting, the next decision sees the freed memory (a victim may have become busy). */
  const decide = (candidate: Candidate): Effect.Effect<Outcome, AdmissionRefused> =>
    Effect.gen(function* () {
      for (;;) {
        const running = [...host.running(), ...pending.values()]
        const decision = decideAdmission({ policy: scheduling.policy, budgetMiB: scheduling.budgetMiB, running, candidate })
        switch (decision._tag) {
          case "Admit":
            pending.set(candidate.instance, {
              instance: candidate.instance,
              plugin: candidate.plugin,
              costMiB: expectedMiB(candidate.expected),
              lastUsed: Number.POSITIVE_INFINITY,
              inFlight: 1,
            })
            return { _tag: "go" } as const
          case "Evict": {
            const stopped = yield* host.evict(decision.instances, "admission", candidate.instance)
            if (stopped.length > 0) continue
            // Nothing could be stopped (all became busy or are being changed): they count as busy.
            const reason: BlockReason = {
              _tag: "BusyInstancesHoldMemory",
              expectedMiB: expectedMiB(candidate.expected),
              budgetMiB: scheduling.budgetMiB,
              inUseMiB: running.filter((r) => r.instance !== candidate.instance).reduce((sum, r) => sum + r.costMiB, 0),
              busyMiB: decision.freedMiB,
              busy: [...decision.instances].sort(),
            }
            if (scheduling.policy !== "queue") return yield* new AdmissionRefused({ plugin: candidate.plugin, instance: candidate.instance, reason })
            return { _tag: "wait", signal: waitSignal(), reason } as const
          }
          case "Refuse":
            return yield* new AdmissionRefused({ plugin: candidate.plugin, instance: candidate.instance, reason: decision.reason })
          case "Wait":
            // decideAdmission waits only under queue.
            return { _tag: "wait", reason: decision.reason, signal: waitSignal() } as const
        }
      }
    }).pipe(decisions.withPermits(1))

  const admitted = <A, E, R>(candidate: Candidate, start: Effect.Effect<A, E, R>): Effect.Effect<A, E | AdmissionRefused | AdmissionTimeout, R> => {
    if (scheduling.policy === "permissive") return start
    const deadline = Date.now() + scheduling.admissionTimeoutMillis
    let announced: string | undefined
    const untilAdmitted: Effect.Effect<void, AdmissionRefused | AdmissionTimeout> = Effect.flatMap(decide(candidate), (outcome) => {
      if (outcome._tag === "go") return Effect.void
      const key = canonicalJson(outcome.reason)
      if (key !== announced) {
        announced = key
        host.emit({ _tag: "admissionBlocked", plugin: candidate.plugin, instance: candidate.instance, at: Date.now(), reason: outcome.reason })
      }
      const timedOut = new AdmissionTimeout({
        plugin: candidate.plugin,
        instance: candidate.instance,
        timeoutMillis: scheduling.admissionTimeoutMillis,
        reason: outcome.reason,
      })
      const left = deadline - Date.now()
      if (left <= 0) return Effect.fail(timedOut)
      return Effect.flatMap(Effect.timeoutOption(Deferred.await(outcome.signal), Duration.millis(left)), (woken) =>
        woken._tag === "Some" ? untilAdmitted : Effect.fail(timedOut),
      )
    })
    // Loads, reloads and warm starts of one id never overlap (the manager's per-id lock): the reservation is this call's.
    return Effect.zipRight(untilAdmitted, start).pipe(
      Effect.ensuring(
        Effect.sync(() => {
          if (pending.delete(candidate.instance)) changed()
        }),
      ),
    )
  }

  return { admitted, changed, pending: () => [...pending.values()] }
}
