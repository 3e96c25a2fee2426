import { Cause, Effect, Exit, Option } from "effect"
import { categoryOf, emptyAggregate, isPluginFailure, summarizeAggregate, type AggregateSummary, type ResourceAggregate } from "@plinth/domain"
import { configHash } from "../hashing/ConfigHash.js"
import { EmpiricalStore, type EmpiricalKey } from "../stores/EmpiricalStore.js"
import type { StoreUnavailable } from "../stores/StoreErrors.js"
import type { CallUsage } from "../wire/Protocol.js"
import type { ProcessSample } from "../instance/ProcessStats.js"

/*
 * What the manager learns from each call: wall time measured here, CPU time
 * and peak RSS as the worker reported them in the call's final frame. One
 * sample per finished call goes to the EmpiricalStore, whose `record` only
 * queues it: nothing here waits for the disk. Samples are keyed by plugin,
 * the digest its lock entry verified and the hash of the config's canonical
 * JSON, so two instances with one config share a record.
 *
 * A worker may lie about its own usage (well-formed numbers are all the
 * protocol checks): that misleads only the scheduling of its own plugin.
 */

/** What `manager.stats(id)` returns for an instance. */
export interface InstanceStats {
  readonly instance: string
  readonly plugin: string
  /** The record this instance's calls are counted in: shared by every instance of the plugin with the same config. */
  readonly key: EmpiricalKey
  /** Every call recorded under `key`, across instances, restarts and manager lifetimes (with a database-backed store). */
  readonly aggregate: ResourceAggregate
  readonly summary: AggregateSummary
  /** What the current worker reported for its last finished call, if one has. */
  readonly last: CallUsage | undefined
  /** The current worker measured as `stats` was asked (resident memory, CPU time so far), where the system tells (Linux). */
  readonly now?: ProcessSample
}

/** What the recorder needs of a managed instance: its plugin, the lock entry it was verified against, its config. */
export interface UsageSubject {
  readonly plugin: { readonly id: string; readonly locked: { readonly digest: string } }
  readonly config: Readonly<Record<string, unknown>>
}

/** Calls that never reached the plugin's code, or that the caller abandoned, say nothing of its cost. */
const succeeded = { success: true } as const
const failed = { success: false } as const
const counts = <E>(exit: Exit.Exit<unknown, E>): { readonly success: boolean } | undefined => {
  if (Exit.isSuccess(exit)) return succeeded
  const failure = Option.getOrUndefined(Cause.failureOption(exit.cause))
  if (failure === undefined) return Cause.isInterruptedOnly(exit.cause) ? undefined : failed
  // The manager's own refusals (disabled, not loaded) and the caller's mistakes (input errors) are not samples.
  return isPluginFailure(failure) && categoryOf(failure) !== "input" ? failed : undefined
}

export const makeUsageRecorder = (store: EmpiricalStore["Type"]) => {
  // A config object is replaced, never changed, when an instance's config changes: its key is built once.
  const keys = new WeakMap<object, EmpiricalKey>()
  const keyOf = (subject: UsageSubject): EmpiricalKey => {
    const known = keys.get(subject.config)
    if (known !== undefined && known.plugin === subject.plugin.id && known.pluginDigest === subject.plugin.locked.digest) return known
    const key = { plugin: subject.plugin.id, pluginDigest: subject.plugin.locked.digest, configHash: configHash(subject.config) }
    keys.set(subject.config, key)
    return key
  }

  /**
   * Starts measuring a call: `onUsage` goes to the instance (and tells the
   * caller's own), `end` records the call's sample: at once when the store
   * has `recordNow` (and returns Effect.void), else it returns the effect that
   * does. Plain functions, not combinators: this is on every call's path.
   */
  const recordNow = store.recordNow
  const begin = (subject: UsageSubject, callerOnUsage: ((usage: CallUsage) => void) | undefined) => {
    const key = keyOf(subject)
    const started = performance.now()
    let usage: CallUsage | undefined
    return {
      onUsage: (reported: CallUsage) => {
        usage = reported
        callerOnUsage?.(reported)
      },
      end: <E>(exit: Exit.Exit<unknown, E>): Effect.Effect<void> => {
        const counted = counts(exit)
        if (counted === undefined) return Effect.void
        const sample = {
          success: counted.success,
          wallMs: performance.now() - started,
          // A worker that died mid-call reported nothing: wall time and the outcome still count.
          cpuMs: usage?.cpuMs,
          peakRssBytes: usage?.peakRssBytes,
        }
        if (recordNow === undefined) return store.record(key, sample)
        recordNow(key, sample)
        return Effect.void
      },
    }
  }

  /** The aggregate so far, after every sample recorded before this was asked for is written. */
  const stats = (instance: string, subject: UsageSubject, last: CallUsage | undefined): Effect.Effect<InstanceStats, StoreUnavailable> =>
    Effect.gen(function* () {
      const key = keyOf(subject)
      yield* store.flush
      const aggregate = Option.match(yield* store.get(key), { onNone: () => emptyAggregate, onSome: (record) => record.aggregate })
      return { instance, plugin: subject.plugin.id, key, aggregate, summary: summarizeAggregate(aggregate), last }
    })

  return { begin, stats, keyOf }
}
