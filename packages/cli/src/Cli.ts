import { Command, HelpDoc, ValidationError } from "@effect/cli"
import { Console, Effect } from "effect"
import { PlinthLive } from "@plinth/runtime"
import { UserOutput } from "./Colour.js"
import { locate } from "./CommandTree.js"
import { group } from "./commands/Group.js"
import { plugins } from "./commands/Plugins.js"
import { ExitCode, exitCodeForFailure } from "./ExitCode.js"
import { UsageError } from "./Failures.js"
import { helpHint } from "./Output.js"

export const VERSION = "0.1.0"

/** The whole command tree. */
export const plinth = group({
  parents: [],
  name: "plinth",
  description: "Load Node.js plugins only after verifying every file against PLUGINS.lock.",
  subcommands: [plugins.command],
  subgroups: [plugins.tree],
})

const cli = Command.run(plinth.command, { name: "plinth", version: VERSION, executable: "plinth" })

/** The message for a command line the parser refused, naming the command it concerns. */
export const explainUsageError = (error: ValidationError.ValidationError, args: ReadonlyArray<string>): string => {
  const { path, problem } = locate(plinth.tree, args)
  const parserMessage = HelpDoc.toAnsiText(error.error).trim()
  // The parser words a bad name deep in the tree as if it were at the top; say where it is.
  const message = ValidationError.isCommandMismatch(error) && problem !== undefined ? problem : parserMessage
  return `usage error: ${message}\n${helpHint(path.join(" "))}`
}

/**
 * Parses `argv` (as in `process.argv`: runtime and script first) and runs the
 * command. Every failure is typed and has already been reported to the user.
 */
export const runCommand = (argv: ReadonlyArray<string>, environment: { readonly interactive: boolean }) => {
  const args = argv.slice(2)
  return Effect.gen(function* () {
    // The built-in wizard prompts on stdin; without a terminal it would wait forever.
    if (!environment.interactive && args.includes("--wizard")) {
      const failure = new UsageError({ message: "--wizard needs an interactive terminal", command: "plinth" })
      const output = yield* UserOutput
      yield* output.err(`usage error: ${failure.message}`)
      return yield* failure
    }
    yield* cli(argv).pipe(
      // The parser prints its errors through `Console.error`; they are re-worded below instead.
      silenceConsoleErrors,
      Effect.tapError((failure) =>
        ValidationError.isValidationError(failure)
          ? Effect.flatMap(UserOutput, (output) => output.err(explainUsageError(failure, args)))
          : Effect.void,
      ),
    )
  }).pipe(Effect.provide(PlinthLive))
}

const silenceConsoleErrors = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.consoleWith((console) => Effect.withConsole(effect, { ...console, error: () => Effect.void }))

/** Runs `plinth` to its exit code. A defect is reported in one line, without a stack trace. */
export const runToExitCode = (argv: ReadonlyArray<string>, environment: { readonly interactive: boolean }) =>
  runCommand(argv, environment).pipe(
    Effect.as(ExitCode.Ok as ExitCode),
    Effect.catchAll((failure) => Effect.succeed(exitCodeForFailure(failure))),
    Effect.catchAllDefect((defect) =>
      Effect.as(Console.error(`plinth: unexpected error: ${describeDefect(defect)}`), ExitCode.Failure as ExitCode),
    ),
  )

const describeDefect = (defect: unknown) => (defect instanceof Error ? `${defect.name}: ${defect.message}` : String(defect))
