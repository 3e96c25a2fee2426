import { Schema } from "effect"

/*
 * Online moments of one measured quantity (Welford), kept so that two partial
 * results can be merged exactly (Chan et al.): a store folds a batch into the
 * record already on disk without re-reading any sample.
 */

/** Count, mean, sum of squared deviations from the mean (M2) and the largest value seen. */
export const Moments = Schema.Struct({
  count: Schema.Number,
  mean: Schema.Number,
  m2: Schema.Number,
  max: Schema.Number,
})
export type Moments = typeof Moments.Type

export const emptyMoments: Moments = { count: 0, mean: 0, m2: 0, max: 0 }

/** Folds one value in (Welford's update). Non-finite values are ignored: they would poison every later mean. */
export const addValue = (m: Moments, x: number): Moments => {
  if (!Number.isFinite(x)) return m
  const count = m.count + 1
  const delta = x - m.mean
  const mean = m.mean + delta / count
  return { count, mean, m2: m.m2 + delta * (x - mean), max: m.count === 0 ? x : Math.max(m.max, x) }
}

/** Merges two partial results as if every value had been folded into one (Chan et al.'s parallel update). */
export const mergeMoments = (a: Moments, b: Moments): Moments => {
  if (a.count === 0) return b
  if (b.count === 0) return a
  const count = a.count + b.count
  const delta = b.mean - a.mean
  return {
    count,
    mean: a.mean + (delta * b.count) / count,
    m2: a.m2 + b.m2 + (delta * delta * a.count * b.count) / count,
    max: Math.max(a.max, b.max),
  }
}

/** The sample variance (divides by count - 1); 0 with fewer than two values. */
export const variance = (m: Moments): number => (m.count < 2 ? 0 : Math.max(0, m.m2 / (m.count - 1)))

export const standardDeviation = (m: Moments): number => Math.sqrt(variance(m))
