import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { breakerStep, freshInstanceId, instanceIdProblem, unknownConfigKeys, withoutUnknownKeys } from "../src/index.js"

/*
 * The pure rules under the PluginManager: which instance ids are usable,
 * which config keys are unknown, and how the circuit breaker counts.
 */

const idChar = fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789_-")

describe("instance ids", () => {
  it("every string of 1-64 characters from a-z 0-9 _ - is usable", () => {
    fc.assert(fc.property(fc.array(idChar, { minLength: 1, maxLength: 64 }), (chars) => instanceIdProblem(chars.join("")) === undefined))
  })

  it("anything with another character, or empty, or longer than 64, or not a string, is refused", () => {
    const other = fc.string({ minLength: 1, maxLength: 1 }).filter((c) => !/^[a-z0-9_-]$/.test(c))
    fc.assert(
      fc.property(fc.array(idChar, { maxLength: 30 }), other, fc.array(idChar, { maxLength: 30 }), (before, bad, after) =>
        instanceIdProblem([...before, bad, ...after].join("")) !== undefined,
      ),
    )
    for (const value of ["", "x".repeat(65), "a b", "a/b", "a.b", "a\nb", "A", 3, null, undefined, {}]) expect(instanceIdProblem(value)).toBeDefined()
  })

  it("a fresh id is the plugin id and six lower-case hex digits, itself a usable id", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 3, maxLength: 3 }), (random) => {
        const id = freshInstanceId("my-plugin", random)
        return /^my-plugin-[0-9a-f]{6}$/.test(id) && instanceIdProblem(id) === undefined
      }),
    )
  })
})

describe("config keys", () => {
  const schema = { type: "object", properties: { a: {}, b: {} }, additionalProperties: false }

  it("the unknown keys are exactly the keys not declared, sorted; dropping them leaves only declared keys", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 4 }), fc.integer()), (config) => {
        const unknown = unknownConfigKeys(schema, config)
        const expected = Object.keys(config).filter((k) => k !== "a" && k !== "b").sort()
        const kept = withoutUnknownKeys(schema, config)
        return (
          JSON.stringify(unknown) === JSON.stringify(expected) &&
          Object.keys(kept).every((k) => k === "a" || k === "b") &&
          Object.keys(kept).length + unknown.length === Object.keys(config).length
        )
      }),
    )
  })

  it("a schema that names no keys (a record, or none) takes every key", () => {
    const record = { type: "object", properties: {}, additionalProperties: { title: "unknown" } }
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 4 }), fc.integer()), (config) =>
        unknownConfigKeys(record, config).length === 0 && unknownConfigKeys(undefined, config).length === 0,
      ),
    )
  })

  it("follows a top-level $ref into $defs", () => {
    const referenced = { $ref: "#/$defs/Config", $defs: { Config: schema } }
    expect(unknownConfigKeys(referenced, { a: 1, z: 2, c: 3 })).toEqual(["c", "z"])
  })
})

describe("the circuit breaker", () => {
  const outcome = fc.oneof(
    fc.constant({ ok: true as const }),
    fc.constantFrom("input" as const, "transient" as const, "resource" as const, "fatal" as const).map((category) => ({ ok: false as const, category })),
  )

  it("opens exactly when the count of failures (input aside) since the last success reaches the threshold", () => {
    fc.assert(
      fc.property(fc.array(outcome, { maxLength: 40 }), fc.integer({ min: 1, max: 6 }), (outcomes, threshold) => {
        let failures = 0
        for (const [i, next] of outcomes.entries()) {
          const step = breakerStep(failures, next, threshold)
          failures = step.failures
          const lastSuccess = outcomes.slice(0, i + 1).map((o) => o.ok).lastIndexOf(true)
          const counted = outcomes.slice(lastSuccess + 1, i + 1).filter((o) => !o.ok && o.category !== "input").length
          if (failures !== counted) return false
          if (step.opens !== (!next.ok && next.category !== "input" && counted >= threshold)) return false
        }
        return true
      }),
    )
  })
})
