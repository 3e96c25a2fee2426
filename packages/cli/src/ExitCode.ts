import type { Teardown } from "@effect/platform/Runtime"
import { Cause, Exit, Match, Schema } from "effect"
import { exitCodeFor } from "@plinth/domain"
import type { CommandFailure } from "./Failures.js"

/** The process exit codes of `plinth`; scripts and CI may rely on them. */
export const ExitCode = {
  Ok: 0,
  /** Anything unexpected: an unwritable lock, a bug. */
  Failure: 1,
  /** The command line itself is wrong: unknown flag or subcommand, missing argument. */
  Usage: 2,
  /** `plugins lock --check`: the lock does not pin the plugins as they are on disk. */
  LockOutOfDate: 3,
  /** A plugin (or the lock) was rejected; the same code for every `PluginRejected` variant. */
  Rejected: 4,
  /** Interrupted by SIGINT/SIGTERM, as shells report it. */
  Interrupted: 130,
} as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

const isExitCode = Schema.is(Schema.Literal(...Object.values(ExitCode)))

const usage = () => ExitCode.Usage

/** The exit code for a failed command. Adding a failure without deciding its code does not compile. */
export const exitCodeForFailure: (failure: CommandFailure) => ExitCode = Match.type<CommandFailure>().pipe(
  Match.tagsExhaustive({
    IntegrityMismatch: exitCodeFor,
    MissingManifest: exitCodeFor,
    SchemaViolation: exitCodeFor,
    UnlockedPlugin: exitCodeFor,
    MissingPluginDirectory: exitCodeFor,
    PluginImportError: exitCodeFor,
    SymlinkEscape: exitCodeFor,
    LockFileMalformed: exitCodeFor,
    LockWriteFailed: () => ExitCode.Failure,
    LockOutOfDate: () => ExitCode.LockOutOfDate,
    UsageError: usage,
    CommandMismatch: usage,
    CorrectedFlag: usage,
    // `--help` is answered by the parser itself; if it ever surfaces here it is still not a failure.
    HelpRequested: () => ExitCode.Ok,
    InvalidArgument: usage,
    InvalidValue: usage,
    MissingValue: usage,
    MissingFlag: usage,
    MultipleValuesDetected: usage,
    MissingSubcommand: usage,
    NoBuiltInMatch: usage,
    UnclusteredFlag: usage,
  }),
)

/**
 * The exit code for the whole run. The program succeeds with its exit code, so
 * a failure that reaches here is a defect or an interruption.
 */
export const exitCodeForExit = <E, A>(exit: Exit.Exit<A, E>): ExitCode =>
  Exit.match(exit, {
    onSuccess: (code) => (isExitCode(code) ? code : ExitCode.Failure),
    onFailure: (cause) => (Cause.isInterruptedOnly(cause) ? ExitCode.Interrupted : ExitCode.Failure),
  })

/** `runMain`'s teardown: the process exits with `exitCodeForExit`. */
export const exitWithCode: Teardown = (exit, onExit) => onExit(exitCodeForExit(exit))
