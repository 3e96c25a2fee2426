import { Duration, Either, Option } from "effect"
import { duplicateKeyPlace, parseJsonText, type JsonTextProblem } from "@plinth/domain"
import { InvalidJsonOption } from "./Failures.js"

/*
 * Pure parsing of what `plugins invoke` and `plugins trace` take on the
 * command line, kept apart from the commands so that it can be tested alone.
 */

const units: Readonly<Record<string, (n: number) => Duration.Duration>> = {
  ms: Duration.millis,
  s: Duration.seconds,
  m: Duration.minutes,
  h: Duration.hours,
}

const shortForm = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/

/**
 * A positive duration such as `500ms`, `5s`, `1.5m` or `2h`; Effect's long
 * form (`5 seconds`, `300 millis`) is accepted too. A bare number is refused,
 * because nobody can tell whether it means seconds or milliseconds.
 */
export const parseDuration = (text: string): Either.Either<Duration.Duration, string> => {
  const trimmed = text.trim()
  const short = shortForm.exec(trimmed)
  const parsed = short !== null ? units[short[2]!]!(Number(short[1])) : Option.getOrUndefined(Duration.decodeUnknown(trimmed))
  if (parsed === undefined) return Either.left(`'${text}' is not a duration; use a number and a unit, e.g. 500ms, 5s, 2m or 1h`)
  if (!Duration.isFinite(parsed) || Duration.toMillis(parsed) <= 0) return Either.left(`'${text}' is not a positive, finite duration`)
  return Either.right(parsed)
}

/**
 * How deep `--input`/`--config` JSON may nest. Real inputs stay far below;
 * the cap keeps a hostile or generated value from reaching recursive code
 * (schema checks, serialization) as a stack overflow instead of an input error.
 */
export const MAX_OPTION_JSON_DEPTH = 100

/** Command-line arguments are far smaller than this on every OS; it also caps input read from stdin or a file. */
export const MAX_OPTION_JSON_CHARS = 16 * 1024 * 1024

const optionProblem = (problem: JsonTextProblem): string => {
  switch (problem._tag) {
    case "TooLong":
      return `is longer than ${problem.maxChars} characters`
    case "TooDeep":
      return `is nested ${problem.depth} levels deep; at most ${problem.maxDepth} levels are accepted`
    case "NotJson":
      return `is not valid JSON: ${problem.detail}`
    case "DuplicateKey":
      return `holds the key ${JSON.stringify(problem.key)} twice in ${duplicateKeyPlace(problem)}; keep one`
  }
}

/**
 * The JSON value of `--input` or `--config`, or a typed input failure naming
 * the option: not JSON, too deep, or ambiguous (a key twice in one object).
 */
export const parseJsonOption = (option: InvalidJsonOption["option"], text: string): Either.Either<unknown, InvalidJsonOption> =>
  Either.mapLeft(
    parseJsonText(text, { maxChars: MAX_OPTION_JSON_CHARS, maxDepth: MAX_OPTION_JSON_DEPTH }),
    (problem) => new InvalidJsonOption({ option, detail: optionProblem(problem) }),
  )

/** A `--limit` that makes sense: a whole number of at least 1. */
export const checkLimit = (limit: number): Either.Either<number, string> =>
  Number.isInteger(limit) && limit >= 1 ? Either.right(limit) : Either.left(`--limit must be a whole number of at least 1, not ${limit}`)
