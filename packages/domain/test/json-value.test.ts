import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { describeJsonValueProblem, formatJsonPath, jsonDepthExceeds, jsonValueProblem, maxJsonDepth, type JsonPathSegment } from "@plinth/domain"

// -0 is a number JSON carries as 0; everything else must survive the round trip as it is.
const withoutNegativeZero = (v: unknown): unknown =>
  Object.is(v, -0) ? 0 : Array.isArray(v) ? v.map(withoutNegativeZero) : v !== null && typeof v === "object" ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, withoutNegativeZero(x)])) : v

const jsonValue = fc.jsonValue({ maxDepth: 6 })

/** A JSON container value and a path to one of its positions (the root included). */
const withPosition = jsonValue.chain((root) => {
  const paths: Array<ReadonlyArray<JsonPathSegment>> = [[]]
  const collect = (v: unknown, path: ReadonlyArray<JsonPathSegment>) => {
    if (Array.isArray(v)) v.forEach((x, i) => (paths.push([...path, i]), collect(x, [...path, i])))
    else if (v !== null && typeof v === "object") for (const [k, x] of Object.entries(v)) paths.push([...path, k]), collect(x, [...path, k])
  }
  collect(root, [])
  return fc.constantFrom(...paths).map((path) => ({ root, path }))
})

/** A deep copy of `root` with the value at `path` replaced (`root` itself when the path is empty). */
const replaceAt = (root: unknown, path: ReadonlyArray<JsonPathSegment>, make: (copy: unknown) => unknown): unknown => {
  const copy = structuredClone(root)
  if (path.length === 0) return make(copy)
  let parent = copy as Record<string | number, unknown>
  for (const segment of path.slice(0, -1)) parent = parent[segment] as Record<string | number, unknown>
  // defineProperty: a "__proto__" key must stay an own property, as JSON.parse makes it.
  Object.defineProperty(parent, path[path.length - 1]!, { value: make(copy), enumerable: true, writable: true, configurable: true })
  return copy
}

class Point {
  constructor(readonly x: number) {}
}

const offenders: ReadonlyArray<readonly [string, () => unknown, RegExp, ReadonlyArray<JsonPathSegment>?]> = [
  ["undefined", () => undefined, /^undefined$/],
  ["BigInt", () => 10n, /BigInt/],
  ["symbol", () => Symbol("s"), /symbol/],
  ["function", () => () => 1, /function/],
  ["NaN", () => Number.NaN, /non-finite/],
  ["Infinity", () => Number.POSITIVE_INFINITY, /non-finite/],
  ["Date", () => new Date(0), /a Date/],
  ["Map", () => new Map([["a", 1]]), /a Map/],
  ["Set", () => new Set([1]), /a Set/],
  ["RegExp", () => /x/, /a RegExp/],
  ["Uint8Array", () => new Uint8Array(2), /a Uint8Array/],
  ["Buffer", () => Buffer.from("x"), /a Uint8Array|Buffer/],
  ["boxed string", () => new String("x"), /a String/],
  ["class instance", () => new Point(1), /an instance of Point/],
  ["own toJSON", () => ({ toJSON: () => 1 }), /function/, ["toJSON"]],
  ["array subclass", () => new (class Items extends Array {})(), /own prototype/],
  ["Error", () => new Error("x"), /an Error/],
]

describe("JSON values", () => {
  it("every JSON value is accepted and survives JSON.stringify/JSON.parse unchanged", () => {
    fc.assert(
      fc.property(jsonValue, (value) => {
        expect(jsonValueProblem(value)).toBeUndefined()
        expect(JSON.parse(JSON.stringify(value))).toStrictEqual(withoutNegativeZero(value))
      }),
    )
  })

  it("a non-JSON value anywhere is found, named, and located by its path", () => {
    fc.assert(
      fc.property(withPosition, fc.constantFrom(...offenders), ({ root, path }, [, make, named, below = []]) => {
        const problem = jsonValueProblem(replaceAt(root, path, () => make()))
        expect(problem).toBeDefined()
        expect(problem!.path).toEqual([...path, ...below])
        expect(problem!.problem).toMatch(named)
      }),
    )
  })

  it("a cycle is found where it first closes", () => {
    fc.assert(
      fc.property(withPosition.filter(({ root }) => root !== null && typeof root === "object"), ({ root, path }) => {
        // The value at `path` becomes the root itself: the cycle closes at `path`.
        const value = replaceAt(root, path.length === 0 ? [] : path, (copy) => copy)
        if (path.length === 0) return // replacing the root by itself is no cycle
        const problem = jsonValueProblem(value)
        expect(problem?.problem).toMatch(/cycle/)
        expect(problem?.path).toEqual(path)
      }),
    )
  })

  it("shared subtrees that are not cycles are fine", () => {
    const shared = { a: [1, 2] }
    expect(jsonValueProblem({ x: shared, y: [shared, shared] })).toBeUndefined()
  })

  it(`nesting is capped at ${maxJsonDepth} arrays/objects, and a 5,000-deep value is refused without exhausting the stack`, () => {
    const nested = (depth: number, leaf: unknown = 1) => {
      let v: unknown = leaf
      for (let i = 0; i < depth; i++) v = i % 2 === 0 ? [v] : { k: v }
      return v
    }
    expect(jsonValueProblem(nested(maxJsonDepth))).toBeUndefined()
    const tooDeep = jsonValueProblem(nested(maxJsonDepth + 1))
    expect(tooDeep?.problem).toMatch(/deeper than 256/)
    expect(tooDeep?.path).toHaveLength(maxJsonDepth)
    expect(jsonValueProblem(nested(5000))?.problem).toMatch(/deeper/)
    expect(jsonValueProblem(nested(3), { maxDepth: 2 })?.problem).toMatch(/deeper than 2/)
    // The same cap for values parsed from JSON text, which can only fail this way.
    expect(jsonDepthExceeds(JSON.parse(JSON.stringify(nested(maxJsonDepth))))).toBe(false)
    expect(jsonDepthExceeds(JSON.parse("[".repeat(5000) + "]".repeat(5000)))).toBe(true)
    fc.assert(fc.property(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 40 }), (depth, cap) => {
      expect(jsonDepthExceeds(nested(depth), cap)).toBe(depth > cap)
      expect(jsonValueProblem(nested(depth), { maxDepth: cap }) !== undefined).toBe(depth > cap)
    }))
  })

  it("a value sharing subtrees exponentially is bounded by maxNodes", () => {
    let v: unknown = [1]
    for (let i = 0; i < 60; i++) v = [v, v]
    expect(jsonValueProblem(v, { maxNodes: 100_000 })?.problem).toMatch(/more than 100000 values/)
  })

  it("is total: never throws, whatever it is given", () => {
    const hostile = [
      Object.defineProperty({}, "boom", { enumerable: true, get: () => { throw new Error("getter") } }),
      new Proxy({}, { getPrototypeOf: () => { throw new Error("trap") } }),
      new Proxy([], { get: () => { throw new Error("trap") } }),
      Object.create(null),
      Object.assign(Object.create(null), { a: 1 }),
      JSON.parse('{"__proto__": {"constructor": 1}}'),
    ]
    expect(jsonValueProblem(hostile[0])?.problem).toMatch(/throws when read.*getter/)
    expect(jsonValueProblem(hostile[3])).toBeUndefined()
    expect(jsonValueProblem(hostile[4])).toBeUndefined()
    expect(jsonValueProblem(hostile[5])).toBeUndefined()
    fc.assert(
      fc.property(fc.oneof(fc.anything({ withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withNullPrototype: true, withSparseArray: true, withBoxedValues: true }), fc.constantFrom(...hostile)), (value) => {
        const problem = jsonValueProblem(value)
        if (problem !== undefined) expect(typeof describeJsonValueProblem(problem)).toBe("string")
      }),
    )
  })

  it("sparse arrays are refused (JSON would turn the hole into null)", () => {
    // eslint-disable-next-line no-sparse-arrays
    expect(jsonValueProblem([1, , 3])).toEqual({ path: [1], problem: "undefined" })
  })

  it("paths read like accessors", () => {
    expect(formatJsonPath([])).toBe("$")
    expect(formatJsonPath(["a", 0, "b c", "__proto__"])).toBe('$.a[0]["b c"].__proto__')
    expect(describeJsonValueProblem({ path: ["items", 3], problem: "a BigInt" })).toBe("a BigInt at $.items[3]")
    expect(describeJsonValueProblem({ path: Array.from({ length: 300 }, (_, i) => i), problem: "deep" })).toBe("deep at $[0][1][2][3][4][5][6][7]…(290 more)…[298][299]")
  })
})
