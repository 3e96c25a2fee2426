import { Option, ParseResult, SchemaAST as AST } from "effect"

/*
 * Schema failures in words people act on: one line per problem, naming where
 * (`actions.greet.input`) and what was expected (`expected a semantic version
 * like 1.2.3, got "0.1"`). Effect's own formatters describe the schema's
 * structure instead (`Struct (Encoded side) <-> …`, `└─ From side refinement
 * failure`) and list both branches of every optional field; this walk reads the
 * same issue tree, keeps the outermost human description of each failing
 * value, and drops the `undefined` branch of optional fields.
 */

/** One thing wrong with a decoded value: where, and what was expected there. */
export interface SchemaProblem {
  readonly path: ReadonlyArray<PropertyKey>
  readonly message: string
}

const identifierLike = /^[A-Za-z_$][A-Za-z0-9_$-]*$/

/** `actions.greet.input`, `permissions.env[0]`, `files["a b.js"]`; keys are JSON-quoted when not plain words, so no key can break the line. */
export const formatPath = (path: ReadonlyArray<PropertyKey>): string =>
  path
    .map((segment, i) => {
      if (typeof segment === "number") return `[${segment}]`
      const key = typeof segment === "symbol" ? String(segment) : segment
      if (identifierLike.test(key)) return i === 0 ? key : `.${key}`
      return `[${JSON.stringify(key)}]`
    })
    .join("")

const MAX_ACTUAL_CHARS = 60

/** A short, one-line rendering of a value that was refused. */
export const formatActual = (actual: unknown): string => {
  if (actual === undefined) return "nothing"
  if (actual === null) return "null"
  if (typeof actual === "string") {
    const short = actual.length > MAX_ACTUAL_CHARS ? `${actual.slice(0, MAX_ACTUAL_CHARS - 1)}…` : actual
    return JSON.stringify(short)
  }
  if (typeof actual === "number" || typeof actual === "boolean") return String(actual)
  if (Array.isArray(actual)) return actual.length === 0 ? "an empty list" : `a list of ${actual.length} item${actual.length === 1 ? "" : "s"}`
  if (typeof actual === "object") return "an object"
  return typeof actual
}

const description = (ast: AST.AST): string | undefined => Option.getOrUndefined(AST.getDescriptionAnnotation(ast))

const isUndefined = (ast: AST.AST) => ast._tag === "UndefinedKeyword"

/** What a schema accepts, in words: its description annotation, else a reading of its structure. */
export const describeExpected = (ast: AST.AST): string => {
  switch (ast._tag) {
    case "TypeLiteral":
      return "a JSON object"
    case "TupleType":
      return "a JSON array"
    case "Literal":
      return description(ast) ?? JSON.stringify(ast.literal)
    case "Union": {
      const own = description(ast)
      if (own !== undefined) return own
      const members = ast.types.filter((member) => !isUndefined(member)).map(describeExpected)
      return members.length === 0 ? "nothing" : members.join(" or ")
    }
    case "Refinement":
      return description(ast) ?? describeExpected(ast.from)
    case "Transformation":
      // Decoding reads the encoded side: that is what the JSON must look like.
      return description(ast) ?? describeExpected(ast.from)
    case "Suspend":
      return description(ast) ?? describeExpected(ast.f())
    case "BooleanKeyword":
      return "true or false"
    case "Enums":
      return ast.enums.map(([, value]) => JSON.stringify(value)).join(" or ")
    case "ObjectKeyword":
      return "an object"
    default:
      return description(ast) ?? plainTitle(ast) ?? "a different value"
  }
}

/** A title or identifier, when it reads as words (a class name, not a type expression). */
const plainTitle = (ast: AST.AST): string | undefined => {
  const title = Option.getOrUndefined(Option.orElse(AST.getTitleAnnotation(ast), () => AST.getIdentifierAnnotation(ast)))
  return title !== undefined && /^[\w .,'-]+$/.test(title) ? title : undefined
}

/** The innermost message a refinement's predicate gave (e.g. "the path leaves the plugin folder"), if any. */
const reasonOf = (issue: ParseResult.ParseIssue): string | undefined => {
  switch (issue._tag) {
    case "Refinement":
    case "Transformation":
      return reasonOf(issue.issue)
    case "Type":
      return issue.message
    default:
      return undefined
  }
}

/** True when an issue concerns the value as a whole (a wrong type or a failed predicate), not some part of it. */
const isAboutWholeValue = (issue: ParseResult.ParseIssue): boolean => {
  switch (issue._tag) {
    case "Type":
      return true
    case "Refinement":
      return issue.kind === "Predicate" || isAboutWholeValue(issue.issue)
    case "Transformation":
      return isAboutWholeValue(issue.issue)
    default:
      return false
  }
}

const expectedGot = (ast: AST.AST, actual: unknown, reason: string | undefined) => {
  const base = `expected ${describeExpected(ast)}, got ${formatActual(actual)}`
  return reason === undefined || reason === "" ? base : `${base} (${reason})`
}

const keysOf = (ast: AST.AST): ReadonlyArray<string> | undefined => {
  if (ast._tag === "TypeLiteral") return ast.propertySignatures.map((p) => String(p.name))
  if (ast._tag === "Refinement" || ast._tag === "Transformation") return keysOf(ast._tag === "Refinement" ? ast.from : ast.to)
  return undefined
}

const expectedOfMissing = (issue: ParseResult.Missing): AST.AST => {
  const ast = issue.ast as unknown as { readonly type?: AST.AST }
  return ast.type !== undefined && typeof ast.type === "object" && "_tag" in ast.type ? ast.type : (issue.ast as unknown as AST.AST)
}

const pathOf = (path: ParseResult.Path): ReadonlyArray<PropertyKey> => (Array.isArray(path) ? path : [path as PropertyKey])

const walk = (
  issue: ParseResult.ParseIssue,
  path: ReadonlyArray<PropertyKey>,
  allowedKeys: ReadonlyArray<string> | undefined,
): Array<SchemaProblem> => {
  switch (issue._tag) {
    case "Pointer":
      return walk(issue.issue, [...path, ...pathOf(issue.path)], allowedKeys)
    case "Missing":
      // The issue holds the property signature (or tuple element); what it expects is its `type`.
      return [{ path, message: `missing; expected ${describeExpected(expectedOfMissing(issue))}` }]
    case "Unexpected":
      return [
        {
          path,
          message:
            allowedKeys === undefined
              ? "not allowed here"
              : allowedKeys.length === 0
                ? "not allowed here; this object takes no keys"
                : `not allowed here; the keys allowed are ${allowedKeys.join(", ")}`,
        },
      ]
    case "Forbidden":
      return [{ path, message: `cannot be checked here${issue.message !== undefined ? ` (${issue.message})` : ""}` }]
    case "Type":
      return [{ path, message: expectedGot(issue.ast, issue.actual, issue.message) }]
    case "Refinement":
    case "Transformation":
      // The outermost schema of a chain (brand over pattern over string) carries the human description.
      if (isAboutWholeValue(issue)) return [{ path, message: expectedGot(issue.ast, issue.actual, reasonOf(issue)) }]
      return walk(issue.issue, path, keysOf(issue.ast) ?? allowedKeys)
    case "Composite": {
      if (issue.ast._tag === "Union") {
        // An optional field decodes as `T | undefined`: the `undefined` branch failing says nothing.
        const branches = (Array.isArray(issue.issues) ? issue.issues : [issue.issues]).filter(
          (branch: ParseResult.ParseIssue) => !(branch._tag === "Type" && isUndefined(branch.ast)),
        )
        if (branches.length === 1) return walk(branches[0]!, path, allowedKeys)
        return [{ path, message: expectedGot(issue.ast, issue.actual, undefined) }]
      }
      const keys = keysOf(issue.ast)
      const issues: ReadonlyArray<ParseResult.ParseIssue> = Array.isArray(issue.issues) ? issue.issues : [issue.issues as ParseResult.ParseIssue]
      return issues.flatMap((inner) => walk(inner, path, keys))
    }
  }
}

/** Every problem of a failed decode, in the order the schema found them. */
export const schemaProblems = (error: ParseResult.ParseError | ParseResult.ParseIssue): ReadonlyArray<SchemaProblem> => {
  const problems = walk(error._tag === "ParseError" ? error.issue : error, [], undefined)
  return problems.length > 0 ? problems : [{ path: [], message: "not the expected shape" }]
}

/** `path: message`, or the message alone for the value as a whole; always one line. */
export const formatProblem = (problem: SchemaProblem): string => {
  const where = formatPath(problem.path)
  return oneLine(where === "" ? problem.message : `${where}: ${problem.message}`)
}

/** One line per problem. */
export const formatSchemaProblems = (error: ParseResult.ParseError | ParseResult.ParseIssue): ReadonlyArray<string> =>
  schemaProblems(error).map(formatProblem)

/** Folds line breaks (a predicate's message could hold one) so that each problem stays on its line. */
const oneLine = (text: string) => text.replace(/\s*[\r\n\u2028\u2029]+\s*/g, " ")

/** 1-based line and column of a character offset. */
export const lineColumn = (text: string, offset: number): { readonly line: number; readonly column: number } => {
  let line = 1
  let lineStart = 0
  const end = Math.min(Math.max(offset, 0), text.length)
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 10) {
      line++
      lineStart = i + 1
    }
  }
  return { line, column: end - lineStart + 1 }
}
