import { Console, Effect } from "effect"
import { UserOutput } from "./Colour.js"
import { stringify, unexpectedJson } from "./Envelope.js"
import { ExitCode, exitCodeForFailure } from "./ExitCode.js"
import type { CommandFailure } from "./Failures.js"

/** Whether a command line asks for JSON: then its usage errors are JSON on stdout too. */
export const wantsJson = (args: ReadonlyArray<string>) => {
  const end = args.indexOf("--")
  return (end === -1 ? args : args.slice(0, end)).includes("--json")
}

/**
 * A command run to its exit code. Every failure has already been reported; a
 * defect is reported here in one line, without a stack trace. `argv` is as in
 * `process.argv` (runtime and script first).
 */
export const toExitCode = <R>(command: Effect.Effect<void, CommandFailure, R>, argv: ReadonlyArray<string>) =>
  command.pipe(
    Effect.as(ExitCode.Ok as ExitCode),
    Effect.catchAll((failure) => Effect.succeed(exitCodeForFailure(failure))),
    Effect.catchAllDefect((defect) => {
      const message = describeDefect(defect)
      return Effect.as(
        wantsJson(argv.slice(2))
          ? Effect.flatMap(UserOutput, (output) => output.out(stringify(unexpectedJson(message))))
          : Console.error(`plinth: unexpected error: ${message}`),
        ExitCode.Failure as ExitCode,
      )
    }),
  )

const describeDefect = (defect: unknown) => (defect instanceof Error ? `${defect.name}: ${defect.message}` : String(defect))
