import { Either, Schema } from "effect"
import { parse as parseJsonc, printParseErrorCode, visit, type ParseError } from "jsonc-parser"
import { formatSchemaProblems, lineColumn } from "./SchemaProblems.js"

/** Caps applied to JSON read from disk or a wire before it is parsed. */
export interface JsonCaps {
  readonly maxChars: number
  readonly maxDepth: number
}

/**
 * One pass over a JSON text, outside its strings: the deepest nesting of
 * arrays/objects (found without parsing, so hostile input is refused before
 * any recursive work happens) and how many ':' it holds (in JSON that
 * `JSON.parse` accepted, one per key written).
 */
const scanJsonText = (text: string): { readonly depth: number; readonly keySeparators: number } => {
  let depth = 0
  let deepest = 0
  let separators = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92 /* \ */) i++
      else if (c === 34 /* " */) inString = false
    } else if (c === 34) inString = true
    else if (c === 58 /* : */) separators++
    else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (++depth > deepest) deepest = depth
    } else if (c === 125 /* } */ || c === 93 /* ] */) depth--
  }
  return { depth: deepest, keySeparators: separators }
}

/** The deepest nesting of arrays/objects in a JSON text, found without parsing it. */
export const jsonNestingDepth = (text: string): number => scanJsonText(text).depth

/** Why a JSON text was refused before its shape was looked at. */
export type JsonTextProblem =
  | { readonly _tag: "TooLong"; readonly maxChars: number }
  | { readonly _tag: "TooDeep"; readonly depth: number; readonly maxDepth: number }
  /** `detail` names the place (`line 3, column 5: expected ','`) when the syntax error could be located. */
  | { readonly _tag: "NotJson"; readonly detail: string; readonly line?: number; readonly column?: number }
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
      return `not valid JSON: ${problem.detail}`
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

// Keyed by jsonc-parser's error code names (its codes are a const enum, unusable under verbatimModuleSyntax).
const syntaxWords: { readonly [name: string]: string } = {
  InvalidSymbol: "unexpected character",
  InvalidNumberFormat: "malformed number",
  PropertyNameExpected: "expected a property name in double quotes",
  ValueExpected: "expected a value",
  ColonExpected: "expected ':'",
  CommaExpected: "expected ','",
  CloseBraceExpected: "expected ',' or '}'",
  CloseBracketExpected: "expected ',' or ']'",
  EndOfFileExpected: "expected the end of the text",
  InvalidCommentToken: "comments are not allowed in JSON",
  UnexpectedEndOfComment: "comments are not allowed in JSON",
  UnexpectedEndOfString: "the string is not closed",
  UnexpectedEndOfNumber: "the number is not finished",
  InvalidUnicode: "malformed \\u escape",
  InvalidEscapeCharacter: "invalid escape character",
  InvalidCharacter: "a control character inside a string (escape it)",
}

/**
 * Where and why `JSON.parse` refused a text, as line and column: its own
 * message only gives a character position, and quotes the text itself.
 * jsonc-parser (strict settings) locates the first error.
 */
const syntaxProblem = (text: string, error: unknown): Extract<JsonTextProblem, { _tag: "NotJson" }> => {
  const errors: Array<ParseError> = []
  parseJsonc(text, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false })
  const first = errors[0]
  if (first === undefined) {
    // Only JSON.parse refused it; keep its reason, on one line and without the quoted text.
    const reason = (error instanceof Error ? error.message : String(error)).split(/[\r\n]/)[0]!.replace(/, ".*$/, "")
    return { _tag: "NotJson", detail: reason }
  }
  const { line, column } = lineColumn(text, first.offset)
  const words = syntaxWords[printParseErrorCode(first.error)] ?? "unexpected text"
  return { _tag: "NotJson", detail: `line ${line}, column ${column}: ${text.length === 0 ? "the text is empty" : words}`, line, column }
}

/**
 * Parses JSON text into a plain JSON value, never throwing: too long, too deep,
 * not JSON, or holding a key twice in one object are refused. Keys such as
 * `__proto__` stay ordinary own keys (`JSON.parse` makes them so).
 */
export const parseJsonText = (text: string, caps: JsonCaps): Either.Either<unknown, JsonTextProblem> => {
  if (text.length > caps.maxChars) return Either.left({ _tag: "TooLong", maxChars: caps.maxChars })
  const { depth, keySeparators } = scanJsonText(text)
  if (depth > caps.maxDepth) return Either.left({ _tag: "TooDeep", depth, maxDepth: caps.maxDepth })
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    return Either.left(syntaxProblem(text, error))
  }
  // As many keys in the value as ':' outside strings in the text (each separates a key from its value):
  // JSON.parse kept every key, so none is duplicated. Only otherwise is the text scanned again, slower,
  // to name the duplicate; on a lock and five manifests that scan was a tenth of `plinth plugins verify`.
  if (keyCount(value) === keySeparators) return Either.right(value)
  const duplicate = findDuplicateKey(text)
  return duplicate === undefined ? Either.right(value) : Either.left(duplicate)
}

/** How many keys the objects of a parsed JSON value hold, all told (its depth is capped). */
const keyCount = (value: unknown): number => {
  if (value === null || typeof value !== "object") return 0
  let count = 0
  if (Array.isArray(value)) {
    for (const item of value) count += keyCount(item)
    return count
  }
  for (const key of Object.keys(value)) count += 1 + keyCount((value as Record<string, unknown>)[key])
  return count
}

/**
 * Decodes JSON text with a Schema, never throwing: too long, too deep,
 * not JSON, a duplicate key, or not the expected shape all come back as
 * readable lines, one per problem (`version: expected …, got "0.1"`).
 */
export const decodeJsonTextProblems = <A, I>(
  schema: Schema.Schema<A, I, never>,
  text: string,
  caps: JsonCaps,
): Either.Either<A, ReadonlyArray<string>> =>
  Either.flatMap(
    Either.mapLeft(parseJsonText(text, caps), (problem) => [describeJsonProblem(problem)]),
    (json) =>
      Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })(json).pipe(Either.mapLeft(formatSchemaProblems)),
  )

/** `decodeJsonTextProblems` with the problems as one text, one problem per line. */
export const decodeJsonText = <A, I>(schema: Schema.Schema<A, I, never>, text: string, caps: JsonCaps): Either.Either<A, string> =>
  Either.mapLeft(decodeJsonTextProblems(schema, text, caps), (lines) => lines.join("\n"))
