import { Command, HelpDoc, ValidationError } from "@effect/cli"
import { Effect } from "effect"
import { PlinthLive, VerifyLive } from "@plinth/runtime"
import { UserOutput } from "./Colour.js"
import { interpret, locate, nodeAt } from "./CommandTree.js"
import { group } from "./commands/Group.js"
import { jobs } from "./commands/Jobs.js"
import { plugins } from "./commands/Plugins.js"
import { serve } from "./commands/Serve.js"
import { secrets, secretsUsageMessage } from "./commands/Secrets.js"
import { completionScript } from "./Completions.js"
import { UsageError } from "./Failures.js"
import { runVerify } from "./commands/VerifyRun.js"
import { plainVerify } from "./PlainCommandLine.js"
import { renderHelp } from "./Help.js"
import { reportFailures } from "./Output.js"
import { withRootFolder } from "./RootFolder.js"
import { toExitCode, wantsJson } from "./ToExitCode.js"

export { wantsJson }

export const VERSION = "0.1.0"

/** The whole command tree. */
export const plinth = group({
  parents: [],
  name: "plinth",
  description: "Load Node.js plugins only after verifying every file against PLUGINS.lock.",
  subcommands: [plugins.command, secrets.command, serve, jobs.command],
  subgroups: [plugins.tree, secrets.tree, jobs.tree],
})

const cli = Command.run(plinth.command, { name: "plinth", version: VERSION, executable: "plinth" })

/** The parser's refusal of a command line, as a usage error naming the command it concerns. */
export const explainUsageError = (error: ValidationError.ValidationError, args: ReadonlyArray<string>): UsageError => {
  const { path, problem } = locate(plinth.tree, args)
  const parserMessage = HelpDoc.toAnsiText(error.error).trim()
  // The parser words a bad name deep in the tree as if it were at the top; say where it is.
  const unknown = /^Received unknown argument: '(-.*)'$/.exec(parserMessage)
  const message =
    ValidationError.isCommandMismatch(error) && problem !== undefined
      ? problem
      : unknown !== null
        ? nodeAt(plinth.tree, path)?.options.some((o) => o.name === unknown[1]!.split("=")[0])
          ? `'${path.join(" ")}' takes '${unknown[1]!.split("=")[0]}' once`
          : `'${path.join(" ")}' has no option '${unknown[1]}'`
        : parserMessage
  // One line: the parser sometimes breaks its message over several.
  return new UsageError({ message: secretsUsageMessage(path, message.split(/\s*\n\s*/).join(" ")), command: path.join(" ") })
}

/**
 * Parses `argv` (as in `process.argv`: runtime and script first) and runs the
 * command. Help, the version and completion scripts are answered here, from
 * the command tree and Docs.ts; the parser's own built-ins (`--wizard`,
 * `--log-level`) are refused. Every failure is typed and has already been
 * reported to the user. `environment` is kept for callers: nothing prompts any more.
 */
export const runCommand = (argv: ReadonlyArray<string>, _environment: { readonly interactive: boolean }) => {
  const args = argv.slice(2)
  const format = wantsJson(args) ? "json" : "human"
  return Effect.gen(function* () {
    const output = yield* UserOutput
    const directive = interpret(plinth.tree, args)
    switch (directive._tag) {
      case "Version":
        return yield* output.out(VERSION)
      case "Completions":
        return yield* output.out(completionScript(directive.shell, plinth.tree).trimEnd())
      case "Refused":
        return yield* Effect.fail(new UsageError({ message: directive.problem, command: directive.path.join(" ") })).pipe(
          reportFailures(format),
        )
      case "Help": {
        const help = renderHelp(plinth.tree, directive.path, VERSION, output.palette)
        // A command without written help (added without its Docs.ts entry) still gets the parser's.
        if (help !== undefined) return yield* output.out(help)
        break
      }
      case "Parse": {
        // A plain `plugins verify` line runs without the parser, on the layers verifying needs (ADR 0018).
        const plain = plainVerify(args, process.env)
        if (plain !== undefined) return yield* withRootFolder("verify", plain, runVerify(plain)).pipe(Effect.provide(VerifyLive))
        break
      }
    }
    yield* cli(argv).pipe(
      // The parser prints its errors through `Console.error`; they are re-worded below instead.
      silenceConsoleErrors,
      Effect.catchIf(ValidationError.isValidationError, (failure) =>
        ValidationError.isHelpRequested(failure)
          ? Effect.void
          : Effect.fail(explainUsageError(failure, args)).pipe(reportFailures(format)),
      ),
      Effect.provide(PlinthLive),
    )
  })
}

const silenceConsoleErrors = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.consoleWith((console) => Effect.withConsole(effect, { ...console, error: () => Effect.void }))

/** Runs `plinth` to its exit code. A defect is reported in one line, without a stack trace. */
export const runToExitCode = (argv: ReadonlyArray<string>, environment: { readonly interactive: boolean }) =>
  toExitCode(runCommand(argv, environment), argv)
