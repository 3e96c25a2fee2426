import { Schema } from "effect"
import { addValue, emptyMoments, mergeMoments, Moments, standardDeviation, variance } from "./Moments.js"

/*
 * What Plinth learns about a plugin's cost from its calls: how many, how many
 * succeeded, and the moments of wall time, CPU time and peak resident memory.
 * CPU time and peak memory are reported by the worker and can be missing (a
 * worker killed mid-call reports nothing), so each quantity keeps its own count.
 */

/** One observed call. */
export interface ResourceSample {
  readonly success: boolean
  readonly wallMs: number
  readonly cpuMs?: number | undefined
  readonly peakRssBytes?: number | undefined
}

export const ResourceAggregate = Schema.Struct({
  count: Schema.Number,
  successes: Schema.Number,
  wallMs: Moments,
  cpuMs: Moments,
  peakRssBytes: Moments,
})
export type ResourceAggregate = typeof ResourceAggregate.Type

export const emptyAggregate: ResourceAggregate = {
  count: 0,
  successes: 0,
  wallMs: emptyMoments,
  cpuMs: emptyMoments,
  peakRssBytes: emptyMoments,
}

export const addSample = (a: ResourceAggregate, s: ResourceSample): ResourceAggregate => ({
  count: a.count + 1,
  successes: a.successes + (s.success ? 1 : 0),
  wallMs: addValue(a.wallMs, s.wallMs),
  cpuMs: s.cpuMs === undefined ? a.cpuMs : addValue(a.cpuMs, s.cpuMs),
  peakRssBytes: s.peakRssBytes === undefined ? a.peakRssBytes : addValue(a.peakRssBytes, s.peakRssBytes),
})

export const aggregateSamples = (samples: Iterable<ResourceSample>): ResourceAggregate => {
  let a = emptyAggregate
  for (const s of samples) a = addSample(a, s)
  return a
}

/** The aggregate of both parts' samples, without the samples. */
export const mergeAggregates = (a: ResourceAggregate, b: ResourceAggregate): ResourceAggregate => ({
  count: a.count + b.count,
  successes: a.successes + b.successes,
  wallMs: mergeMoments(a.wallMs, b.wallMs),
  cpuMs: mergeMoments(a.cpuMs, b.cpuMs),
  peakRssBytes: mergeMoments(a.peakRssBytes, b.peakRssBytes),
})

/** Successes over calls; 0 before the first call. */
export const successRate = (a: ResourceAggregate): number => (a.count === 0 ? 0 : a.successes / a.count)

/** One quantity as a reader wants it: samples, mean, sample variance, standard deviation, largest. */
export interface MomentsSummary {
  readonly samples: number
  readonly mean: number
  readonly variance: number
  readonly stdDev: number
  readonly max: number
}

export interface AggregateSummary {
  readonly calls: number
  readonly successes: number
  readonly successRate: number
  readonly wallMs: MomentsSummary
  readonly cpuMs: MomentsSummary
  readonly peakRssBytes: MomentsSummary
}

const summarizeMoments = (m: Moments): MomentsSummary => ({
  samples: m.count,
  mean: m.mean,
  variance: variance(m),
  stdDev: standardDeviation(m),
  max: m.max,
})

export const summarizeAggregate = (a: ResourceAggregate): AggregateSummary => ({
  calls: a.count,
  successes: a.successes,
  successRate: successRate(a),
  wallMs: summarizeMoments(a.wallMs),
  cpuMs: summarizeMoments(a.cpuMs),
  peakRssBytes: summarizeMoments(a.peakRssBytes),
})
