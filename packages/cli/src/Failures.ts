import type { ValidationError } from "@effect/cli/ValidationError"
import { Data } from "effect"
import type { PluginRejected } from "@plinth/domain"
import type { LockWriteFailed } from "@plinth/runtime"

/** `plinth plugins lock --check` found that re-locking would change the lock. */
export class LockOutOfDate extends Data.TaggedError("LockOutOfDate")<{
  readonly lock: string
}> {}

/** The command line is wrong in a way the parser does not catch itself, e.g. a command group run alone. */
export class UsageError extends Data.TaggedError("UsageError")<{
  readonly message: string
  /** The command whose `--help` explains the right usage. */
  readonly command: string
}> {}

/** What a command handler can fail with; the handler reports it before failing. */
export type HandlerFailure = PluginRejected | LockWriteFailed | LockOutOfDate | UsageError

/** Everything a `plinth` run can fail with, parsing included; each has an exit code in `ExitCode`. */
export type CommandFailure = HandlerFailure | ValidationError
