import { Duration, Either, Option } from "effect"
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

/** The JSON value of `--input` or `--config`, or a typed input failure naming the option. */
export const parseJsonOption = (option: "--input" | "--config", text: string): Either.Either<unknown, InvalidJsonOption> =>
  Either.try({
    try: (): unknown => JSON.parse(text),
    catch: (error) => new InvalidJsonOption({ option, detail: error instanceof Error ? error.message : String(error) }),
  })

/** A `--limit` that makes sense: a whole number of at least 1. */
export const checkLimit = (limit: number): Either.Either<number, string> =>
  Number.isInteger(limit) && limit >= 1 ? Either.right(limit) : Either.left(`--limit must be a whole number of at least 1, not ${limit}`)
