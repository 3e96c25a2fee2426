import { Duration, Either } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { checkLimit, InvalidJsonOption, parseDuration, parseJsonOption } from "@plinth/cli"

const millis = (text: string) => Either.map(parseDuration(text), Duration.toMillis)

describe("--timeout durations", () => {
  it("reads a number with a unit: ms, s, m, h", () => {
    expect(millis("500ms")).toEqual(Either.right(500))
    expect(millis("5s")).toEqual(Either.right(5_000))
    expect(millis("2m")).toEqual(Either.right(120_000))
    expect(millis("1.5m")).toEqual(Either.right(90_000))
    expect(millis("1h")).toEqual(Either.right(3_600_000))
    expect(millis(" 300ms ")).toEqual(Either.right(300))
  })

  it("also reads Effect's long form", () => {
    expect(millis("5 seconds")).toEqual(Either.right(5_000))
    expect(millis("300 millis")).toEqual(Either.right(300))
  })

  it("refuses a bare number, an unknown unit, zero, negatives and nonsense, saying what it expects", () => {
    for (const text of ["5", "", "5x", "5 s s", "0s", "0ms", "-1s", "s", "Infinity", "1e3ms", "five seconds"]) {
      const parsed = parseDuration(text)
      expect(Either.isLeft(parsed), text).toBe(true)
    }
    expect(parseDuration("5")).toEqual(Either.left("'5' is not a duration; use a number and a unit, e.g. 500ms, 5s, 2m or 1h"))
  })

  it("any whole number of any unit reads back as that many milliseconds", () => {
    const factor = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), fc.constantFrom("ms", "s", "m", "h"), (n, unit) => {
        expect(millis(`${n}${unit}`)).toEqual(Either.right(n * factor[unit as keyof typeof factor]))
      }),
    )
  })
})

describe("--input and --config JSON", () => {
  it("parses any JSON value", () => {
    expect(parseJsonOption("--input", '{"name": "Ada"}')).toEqual(Either.right({ name: "Ada" }))
    expect(parseJsonOption("--config", "[1, 2]")).toEqual(Either.right([1, 2]))
    expect(parseJsonOption("--input", "null")).toEqual(Either.right(null))
  })

  it("text that is not JSON is a typed input failure naming the option", () => {
    const failure = Either.getLeft(parseJsonOption("--config", "{name: Ada}"))
    expect(failure._tag).toBe("Some")
    const error = (failure as { value: InvalidJsonOption }).value
    expect(error).toBeInstanceOf(InvalidJsonOption)
    expect(error.option).toBe("--config")
    expect(error.message).toMatch(/^--config is not valid JSON: /)
  })

  it("never throws, whatever the text", () => {
    fc.assert(fc.property(fc.string(), (text) => Either.isEither(parseJsonOption("--input", text))))
  })
})

describe("--limit", () => {
  it("is a whole number of at least 1", () => {
    expect(checkLimit(1)).toEqual(Either.right(1))
    expect(checkLimit(50)).toEqual(Either.right(50))
    for (const bad of [0, -3, 1.5]) expect(Either.isLeft(checkLimit(bad))).toBe(true)
  })
})
