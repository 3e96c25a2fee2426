/*
 * The one value domain of plugin calls: inputs, results, stream chunks and
 * configs are JSON values, in both directions, whatever their size. A JSON
 * value is, exactly:
 *   - null, a boolean, a string, or a finite number (-0 travels as 0);
 *   - an array (its prototype is Array.prototype) of JSON values, without holes;
 *   - a plain object (its prototype is Object.prototype or null) whose own
 *     enumerable string-keyed properties are JSON values;
 * nested at most `maxJsonDepth` arrays/objects deep, without cycles. Nothing
 * else: no undefined, BigInt, symbol, function, Date, Map, Set, RegExp, typed
 * array, boxed primitive or class instance, and `toJSON` is not honoured (an
 * own `toJSON` is a function, so refused; a Date's is on a prototype that is
 * not a plain object's). Like JSON.stringify, the check ignores symbol keys,
 * non-enumerable properties and an array's non-index properties.
 *
 * The check is a pure, total function: it never throws (a throwing getter or
 * proxy trap is reported as a problem) and always ends (the depth cap bounds
 * the recursion; `maxNodes` bounds a value that shares subtrees).
 */

/**
 * How many arrays/objects may nest: a scalar is 0 deep, `[]` is 1, `[[1]]`
 * is 2. Deep enough for any real document; shallow enough that every
 * recursive consumer (JSON.stringify, Schema decoders, JSON Schema validators,
 * printers) stays far from the stack limit.
 */
export const maxJsonDepth = 256

export type JsonPathSegment = string | number

export interface JsonValueProblem {
  /** Where the offending value sits, from the root: property names and array indexes. */
  readonly path: ReadonlyArray<JsonPathSegment>
  /** What it is, e.g. "a BigInt", "a cycle", "nested deeper than 256". */
  readonly problem: string
}

export interface JsonValueLimits {
  /** Default `maxJsonDepth`. */
  readonly maxDepth?: number
  /** Arrays, objects and scalars visited at most (each costs at least a byte of JSON); default unbounded. */
  readonly maxNodes?: number
}

const identifier = /^[A-Za-z_$][A-Za-z0-9_$]*$/

/** `$`, `$.a`, `$[0]`, `$["a b"]`: the path as a JavaScript-like accessor from the root. */
export const formatJsonPath = (path: ReadonlyArray<JsonPathSegment>): string => {
  let text = "$"
  for (const segment of path) {
    text += typeof segment === "number" ? `[${segment}]` : identifier.test(segment) ? `.${segment}` : `[${JSON.stringify(segment)}]`
  }
  return text
}

/** One line: "a BigInt at $.items[3]"; a path over 12 segments shows its first 8 and last 2. */
export const describeJsonValueProblem = (problem: JsonValueProblem): string => {
  const { path } = problem
  if (path.length <= 12) return `${problem.problem} at ${formatJsonPath(path)}`
  const tail = formatJsonPath(path.slice(-2)).slice(1)
  return `${problem.problem} at ${formatJsonPath(path.slice(0, 8))}…(${path.length - 10} more)…${tail}`
}

const article = (name: string) => (/^[AEIO]/i.test(name) ? `an ${name}` : `a ${name}`)

/** What a non-plain object is, for the message; never throws. */
const kindOf = (value: object): string => {
  try {
    const tag = Object.prototype.toString.call(value).slice(8, -1)
    if (tag !== "Object") return article(tag)
    const constructor: unknown = Object.getPrototypeOf(value)?.constructor
    const name = typeof constructor === "function" ? constructor.name : ""
    return name !== "" ? `an instance of ${name}` : "an object with a custom prototype"
  } catch {
    return "an object that cannot be inspected"
  }
}

class Found {
  readonly path: Array<JsonPathSegment> = []
  /** Keep only this many segments of the path from the root (a cycle is reported where it first closes). */
  keep = Number.POSITIVE_INFINITY
  constructor(readonly problem: string) {}
}

/**
 * The common case, checked without allocating: true when `v` is certainly a
 * JSON value within `budget` levels (false means "look closer", not "no").
 * It runs on every call's input and output, so it stays small.
 */
const plainlyJson = (v: unknown, budget: number): boolean => {
  if (--fastNodes < 0) return false
  if (typeof v !== "object") return typeof v === "string" || typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v))
  if (v === null) return true
  if (budget === 0) return false
  if (Array.isArray(v)) {
    if (Object.getPrototypeOf(v) !== Array.prototype) return false
    for (let i = 0; i < v.length; i++) if (!plainlyJson(v[i], budget - 1)) return false
    return true
  }
  const proto = Object.getPrototypeOf(v)
  if (proto !== Object.prototype && proto !== null) return false
  for (const key in v) {
    if (Object.hasOwn(v, key) && !plainlyJson((v as Record<string, unknown>)[key], budget - 1)) return false
  }
  return true
}

/** Nodes the allocation-free walk visits at most (then the full walk decides). */
let fastNodes = 0

const smallAndPlain = (value: unknown): boolean => {
  fastNodes = 256
  return plainlyJson(value, 16)
}

/**
 * The first problem that makes `value` not a JSON value (depth first, in
 * property order), or undefined when it is one.
 */
export const jsonValueProblem = (value: unknown, limits?: JsonValueLimits): JsonValueProblem | undefined => {
  if (limits === undefined) {
    try {
      if (smallAndPlain(value)) return undefined
    } catch {
      // A throwing getter or proxy trap: the full walk below reports it.
    }
  }
  const maxDepth = limits?.maxDepth ?? maxJsonDepth
  const maxNodes = limits?.maxNodes ?? Number.POSITIVE_INFINITY
  // The containers on the current path: a cycle shows up as a repeat once the walk is too deep.
  const ancestors: Array<object> = []
  let nodes = 0

  // Only once the walk is too deep is the path searched for a repeat: the common case pays nothing for cycles.
  const tooDeep = (container: object): Found => {
    const seen = new Map<object, number>()
    const path = [...ancestors, container]
    for (let at = 0; at < path.length; at++) {
      const earlier = seen.get(path[at]!)
      if (earlier !== undefined) {
        const found = new Found(`a cycle (the value contains itself, ${at - earlier} level${at - earlier === 1 ? "" : "s"} up)`)
        found.keep = at
        return found
      }
      seen.set(path[at]!, at)
    }
    return new Found(`nested deeper than ${maxDepth} arrays/objects`)
  }

  // Returns the problem with its path filled in on the way back up: nothing is built on success.
  const visit = (v: unknown): Found | undefined => {
    if (++nodes > maxNodes) return new Found(`more than ${maxNodes} values`)
    switch (typeof v) {
      case "string":
      case "boolean":
        return undefined
      case "number":
        return Number.isFinite(v) ? undefined : new Found(`a non-finite number (${v})`)
      case "undefined":
        return new Found("undefined")
      case "bigint":
        return new Found("a BigInt")
      case "symbol":
        return new Found("a symbol")
      case "function":
        return new Found("a function")
    }
    if (v === null) return undefined
    const container = v as object
    if (ancestors.length >= maxDepth) return tooDeep(container)
    ancestors.push(container)
    try {
      if (Array.isArray(container)) {
        if (Object.getPrototypeOf(container) !== Array.prototype) return new Found(`${kindOf(container)} (an array with its own prototype)`)
        const array = container as ReadonlyArray<unknown>
        for (let i = 0; i < array.length; i++) {
          const found = visit(array[i])
          if (found !== undefined) {
            found.path.push(i)
            return found
          }
        }
        return undefined
      }
      const proto = Object.getPrototypeOf(container)
      if (proto !== Object.prototype && proto !== null) return new Found(kindOf(container))
      const record = container as Record<string, unknown>
      for (const key in record) {
        if (!Object.hasOwn(record, key)) continue
        const found = visit(record[key])
        if (found !== undefined) {
          found.path.push(key)
          return found
        }
      }
      return undefined
    } finally {
      ancestors.pop()
    }
  }

  let found: Found | undefined
  try {
    found = visit(value)
  } catch (error) {
    // A throwing getter or proxy trap: where exactly is lost, what happened is not.
    found = new Found(`a value that throws when read (${describeThrown(error)})`)
  }
  if (found === undefined) return undefined
  return { path: found.path.reverse().slice(0, found.keep), problem: found.problem }
}

const describeThrown = (error: unknown): string => {
  try {
    return error instanceof Error ? `${error.name}: ${error.message}` : String(error)
  } catch {
    return "an unprintable error"
  }
}

/**
 * Whether a value that came out of JSON.parse nests deeper than `maxDepth`
 * arrays/objects: the only way such a value can fail to be a JSON value.
 * Cheaper than `jsonValueProblem` (no prototype checks), and never recursing
 * deeper than `maxDepth + 1`.
 */
export const jsonDepthExceeds = (parsed: unknown, maxDepth: number = maxJsonDepth): boolean => deeperThan(parsed, maxDepth)

const deeperThan = (v: unknown, budget: number): boolean => {
  if (typeof v !== "object" || v === null) return false
  if (budget === 0) return true
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (deeperThan(v[i], budget - 1)) return true
    return false
  }
  for (const key in v) if (deeperThan((v as Record<string, unknown>)[key], budget - 1)) return true
  return false
}
