import { Schema } from "effect"

/*
 * What the scheduler decides about, as plain data: the manager measures and
 * remembers (clock, stores, worker stats); these functions only compare. Ids
 * are plain strings so a branded InstanceId or PluginId passes as it is.
 * Memory is in MiB, a non-negative finite number (fractions allowed: a
 * measured peak is bytes / 2^20).
 */

export const MiB = Schema.Number.pipe(Schema.finite(), Schema.nonNegative()).annotations({
  description: "an amount of memory in MiB (non-negative)",
})
export type MiB = typeof MiB.Type

/** The manifest declares `resources.memoryMiB`: the worker's heap cap, taken as what it reserves. */
export const DeclaredMemory = Schema.TaggedStruct("Declared", { mib: MiB })
/** No declaration, but calls were measured: the largest peak seen. */
export const MeasuredMemory = Schema.TaggedStruct("Measured", { mib: MiB })
/** Neither: the first run is how it gets measured. */
export const UnknownMemory = Schema.TaggedStruct("Unknown", {})

/** How much memory a candidate is expected to take, and where that figure comes from. */
export const ExpectedMemory = Schema.Union(DeclaredMemory, MeasuredMemory, UnknownMemory)
export type ExpectedMemory = typeof ExpectedMemory.Type

/**
 * The expected memory of an instance: the declared `resources.memoryMiB` when
 * the manifest has one, else the empirical peak, else unknown (the issue's
 * order: a declaration is the author's promise, a measurement only the past).
 */
export const expectedMemory = (sources: {
  readonly declaredMiB?: number | undefined
  readonly measuredPeakMiB?: number | undefined
}): ExpectedMemory =>
  sources.declaredMiB !== undefined
    ? DeclaredMemory.make({ mib: sources.declaredMiB })
    : sources.measuredPeakMiB !== undefined
      ? MeasuredMemory.make({ mib: sources.measuredPeakMiB })
      : UnknownMemory.make({})

/**
 * The MiB an admission counts for a candidate. Unknown counts as 0: refusing
 * an unmeasured plugin would keep it unmeasured for ever, and its worker's
 * heap cap still bounds it.
 */
export const expectedMiB = (expected: ExpectedMemory): number => (expected._tag === "Unknown" ? 0 : expected.mib)

/** An instance asking to start (a new worker, or a reload of one). */
export const Candidate = Schema.Struct({
  instance: Schema.String,
  plugin: Schema.String,
  expected: ExpectedMemory,
})
export type Candidate = typeof Candidate.Type

/** An instance whose worker is running, as the manager last saw it. */
export const RunningInstance = Schema.Struct({
  instance: Schema.String,
  plugin: Schema.String,
  /** What it is taken to hold: its measured peak when known, else its declared memory. Also the eviction tie-break. */
  costMiB: MiB,
  /** When it last finished or started a call, on any monotonic scale the caller chooses (only the order matters). */
  lastUsed: Schema.Number,
  /** Calls in flight on it; an instance with any is busy and is never evicted. */
  inFlight: Schema.Int.pipe(Schema.nonNegative()),
})
export type RunningInstance = typeof RunningInstance.Type

export const isBusy = (running: RunningInstance): boolean => running.inFlight > 0

/**
 * The admission policies:
 *   permissive  always admit; nothing is counted, evicted or refused
 *   safety      admit when the candidate fits under the budget, evicting idle
 *               instances if that makes it fit; otherwise refuse
 *   queue       as safety, but wait (until busy instances finish) instead of refusing
 */
export const SchedulingPolicy = Schema.Literal("permissive", "safety", "queue")
export type SchedulingPolicy = typeof SchedulingPolicy.Type
