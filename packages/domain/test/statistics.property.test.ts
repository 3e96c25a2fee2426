import { describe, expect, it } from "vitest"
import fc from "fast-check"
import {
  addSample,
  aggregateSamples,
  canonicalJson,
  emptyAggregate,
  mergeAggregates,
  successRate,
  summarizeAggregate,
  variance,
  type ResourceAggregate,
  type ResourceSample,
} from "@plinth/domain"

const sample = (wallMs: number, success = true, cpuMs?: number, peakRssBytes?: number): ResourceSample => ({
  success,
  wallMs,
  cpuMs,
  peakRssBytes,
})

const finite = (max: number) => fc.double({ min: 0, max, noNaN: true, noDefaultInfinity: true })
const anySample: fc.Arbitrary<ResourceSample> = fc.record({
  success: fc.boolean(),
  wallMs: finite(60_000),
  cpuMs: fc.option(finite(60_000), { nil: undefined }),
  peakRssBytes: fc.option(finite(8 * 2 ** 30), { nil: undefined }),
})
const samples = fc.array(anySample, { maxLength: 60 })

/** Equal up to floating-point error, relative to the size of the numbers involved. */
const close = (a: number, b: number, scale: number) => expect(Math.abs(a - b)).toBeLessThanOrEqual(1e-9 * Math.max(1, scale))

const expectSameAggregate = (a: ResourceAggregate, b: ResourceAggregate) => {
  expect(a.count).toBe(b.count)
  expect(a.successes).toBe(b.successes)
  for (const q of ["wallMs", "cpuMs", "peakRssBytes"] as const) {
    expect(a[q].count).toBe(b[q].count)
    expect(a[q].max).toBe(b[q].max)
    const scale = Math.max(Math.abs(a[q].mean), Math.abs(b[q].mean))
    close(a[q].mean, b[q].mean, scale)
    close(a[q].m2, b[q].m2, scale * scale * Math.max(1, a[q].count))
  }
}

describe("resource aggregates", () => {
  it("the mean of 20, 40 and 60 is 40, their sample variance 400, and the largest is 60", () => {
    const a = aggregateSamples([sample(20), sample(40), sample(60)])
    expect(a.wallMs.mean).toBe(40)
    expect(variance(a.wallMs)).toBe(400)
    expect(a.wallMs.max).toBe(60)
  })

  it("two successes out of three calls is a success rate of 2/3", () => {
    const a = aggregateSamples([sample(1, true), sample(1, false), sample(1, true)])
    expect(Math.abs(successRate(a) - 2 / 3)).toBeLessThan(1e-9)
    expect(successRate(emptyAggregate)).toBe(0)
  })

  it("a quantity the worker did not report is not counted as zero", () => {
    const a = aggregateSamples([sample(10, true, 4, 1000), sample(30, false)])
    expect(a.count).toBe(2)
    expect(a.cpuMs).toEqual({ count: 1, mean: 4, m2: 0, max: 4 })
    expect(a.peakRssBytes.mean).toBe(1000)
    expect(summarizeAggregate(a)).toMatchObject({ calls: 2, successes: 1, successRate: 0.5, wallMs: { samples: 2, mean: 20, max: 30 } })
  })

  it("the largest peak is the largest value seen", () => {
    fc.assert(
      fc.property(fc.array(anySample, { minLength: 1, maxLength: 60 }), (xs) => {
        const peaks = xs.flatMap((s) => (s.peakRssBytes === undefined ? [] : [s.peakRssBytes]))
        const a = aggregateSamples(xs)
        expect(a.peakRssBytes.max).toBe(peaks.length === 0 ? 0 : Math.max(...peaks))
        expect(a.wallMs.max).toBe(Math.max(...xs.map((s) => s.wallMs)))
      }),
    )
  })

  it("the mean and variance match the two-pass textbook formulas", () => {
    fc.assert(
      fc.property(fc.array(finite(10_000), { minLength: 2, maxLength: 60 }), (xs) => {
        const a = aggregateSamples(xs.map((x) => sample(x)))
        const mean = xs.reduce((s, x) => s + x, 0) / xs.length
        const v = xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (xs.length - 1)
        close(a.wallMs.mean, mean, 10_000)
        close(variance(a.wallMs), v, 10_000 * 10_000)
      }),
    )
  })

  it("merging two partial aggregates equals aggregating every sample at once", () => {
    fc.assert(
      fc.property(samples, samples, (xs, ys) => {
        expectSameAggregate(mergeAggregates(aggregateSamples(xs), aggregateSamples(ys)), aggregateSamples([...xs, ...ys]))
      }),
    )
  })

  it("merging is associative and the empty aggregate is its identity", () => {
    fc.assert(
      fc.property(samples, samples, samples, (xs, ys, zs) => {
        const [a, b, c] = [aggregateSamples(xs), aggregateSamples(ys), aggregateSamples(zs)]
        expectSameAggregate(mergeAggregates(mergeAggregates(a, b), c), mergeAggregates(a, mergeAggregates(b, c)))
        expect(mergeAggregates(a, emptyAggregate)).toEqual(a)
        expect(mergeAggregates(emptyAggregate, a)).toEqual(a)
      }),
    )
  })

  it("folding one sample in is merging the aggregate of that one sample", () => {
    fc.assert(
      fc.property(samples, anySample, (xs, s) => {
        expectSameAggregate(addSample(aggregateSamples(xs), s), mergeAggregates(aggregateSamples(xs), aggregateSamples([s])))
      }),
    )
  })
})

describe("the canonical JSON of a config", () => {
  it("does not depend on the order keys were written in, at any depth", () => {
    expect(canonicalJson({ a: 1, b: 2 })).toBe(canonicalJson({ b: 2, a: 1 }))
    expect(canonicalJson({ x: { b: [1, { d: 1, c: 2 }], a: null } })).toBe('{"x":{"a":null,"b":[1,{"c":2,"d":1}]}}')
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 4 })), (obj) => {
        const reversed = Object.fromEntries(Object.entries(obj).reverse())
        expect(canonicalJson(reversed)).toBe(canonicalJson(obj))
        expect(JSON.parse(canonicalJson(obj))).toEqual(JSON.parse(JSON.stringify(obj)))
      }),
    )
  })

  it("tells different configs apart", () => {
    expect(canonicalJson({ a: 1 })).not.toBe(canonicalJson({ a: "1" }))
    expect(canonicalJson({ a: [1, 2] })).not.toBe(canonicalJson({ a: [2, 1] }))
  })
})
