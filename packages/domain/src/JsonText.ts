import { Either, ParseResult, Schema } from "effect"
import { visit } from "jsonc-parser"

/** Caps applied to JSON read from disk or a wire before it is parsed. */
export interface JsonCaps {
  readonly maxChars: number
  readonly maxDepth: number
}

/**
 * The deepest nesting of arrays/objects in a JSON text, found without parsing it,
 * so that hostile input is refused before any recursive work happens.
 */
export const jsonNestingDepth = (text: string): number => {
  let depth = 0
  let deepest = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92 /* \ */) i++
      else if (c === 34 /* " */) inString = false
    } else if (c === 34) inString = true
    else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (++depth > deepest) deepest = depth
    } else if (c === 125 /* } */ || c === 93 /* ] */) depth--
  }
  return deepest
}

/** Why a JSON text was refused before its shape was looked at. */
export type JsonTextProblem =
  | { readonly _tag: "TooLong"; readonly maxChars: number }
  | { readonly _tag: "TooDeep"; readonly depth: number; readonly maxDepth: number }
  | { readonly _tag: "NotJson"; readonly detail: string }
  | { readonly _tag: "DuplicateKey"; readonly key: string; readonly path: ReadonlyArray<string | number>; readonly line: number; readonly column: number }

/** Where a duplicate key sits, in words. */
export const duplicateKeyPlace = (problem: { readonly path: ReadonlyArray<string | number>; readonly line: number; readonly column: number }) =>
  `${problem.path.length === 0 ? "the top-level object" : `the object at ${problem.path.map(String).join(".")}`} (line ${problem.line}, column ${problem.column})`

/** A one-line reading of a problem, as decoders of files report it. */
export const describeJsonProblem = (problem: JsonTextProblem): string => {
  switch (problem._tag) {
    case "TooLong":
      return `larger than the cap of ${problem.maxChars} characters`
    case "TooDeep":
      return `nested ${problem.depth} levels deep; the cap is ${problem.maxDepth}`
    case "NotJson":
      return `not valid JSON (${problem.detail})`
    case "DuplicateKey":
      return `the key ${JSON.stringify(problem.key)} appears twice in ${duplicateKeyPlace(problem)}; keep one`
  }
}

const stopVisit = Symbol("stopVisit")

/**
 * The first key that appears twice in one object of a JSON text, or undefined.
 * `JSON.parse` keeps the last of two equal keys while a person reading the
 * file may stop at the first, so such a text is ambiguous. Keys are compared
 * after unescaping (`"a"` and `"\u0061"` are the same key). Call it on text
 * `JSON.parse` accepted and whose depth is capped (the scan recurses).
 */
export const findDuplicateKey = (text: string): Extract<JsonTextProblem, { _tag: "DuplicateKey" }> | undefined => {
  const open: Array<Set<string>> = []
  let found: Extract<JsonTextProblem, { _tag: "DuplicateKey" }> | undefined
  try {
    visit(
      text,
      {
        onObjectBegin: () => {
          open.push(new Set())
        },
        onObjectEnd: () => {
          open.pop()
        },
        onObjectProperty: (key, _offset, _length, startLine, startCharacter, pathSupplier) => {
          const seen = open[open.length - 1]!
          if (!seen.has(key)) {
            seen.add(key)
            return
          }
          found = { _tag: "DuplicateKey", key, path: pathSupplier(), line: startLine + 1, column: startCharacter + 1 }
          throw stopVisit
        },
      },
      { disallowComments: true, allowTrailingComma: false },
    )
  } catch (error) {
    if (error !== stopVisit) throw error
  }
  return found
}

/**
 * Parses JSON text into a plain JSON value, never throwing: too long, too deep,
 * not JSON, or holding a key twice in one object are refused. Keys such as
 * `__proto__` stay ordinary own keys (`JSON.parse` makes them so).
 */
export const parseJsonText = (text: string, caps: JsonCaps): Either.Either<unknown, JsonTextProblem> => {
  if (text.length > caps.maxChars) return Either.left({ _tag: "TooLong", maxChars: caps.maxChars })
  const depth = jsonNestingDepth(text)
  if (depth > caps.maxDepth) return Either.left({ _tag: "TooDeep", depth, maxDepth: caps.maxDepth })
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    return Either.left({ _tag: "NotJson", detail: error instanceof Error ? error.message : String(error) })
  }
  const duplicate = findDuplicateKey(text)
  return duplicate === undefined ? Either.right(value) : Either.left(duplicate)
}

/**
 * Decodes JSON text with a Schema, never throwing: too long, too deep,
 * not JSON, a duplicate key, or not the expected shape all come back as a
 * readable detail.
 */
export const decodeJsonText = <A, I>(
  schema: Schema.Schema<A, I, never>,
  text: string,
  caps: JsonCaps,
): Either.Either<A, string> =>
  Either.flatMap(Either.mapLeft(parseJsonText(text, caps), describeJsonProblem), (json) =>
    Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })(json).pipe(
      Either.mapLeft((error) => ParseResult.TreeFormatter.formatErrorSync(error)),
    ),
  )
