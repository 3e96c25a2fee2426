import type { ValidationError } from "@effect/cli/ValidationError"
import { Data, Schema } from "effect"
import {
  isPluginFailure,
  PluginRejected,
  toJobError,
  type ConfigInvalid,
  type JobError,
  type LockChanges,
  type PluginDisabled,
  type PluginFailure,
} from "@plinth/domain"
import {
  PluginNotFound,
  type LockWriteFailed,
  type ReportWriteFailed,
  type SecretStoreUnavailable,
  type StoreSchemaMismatch,
  type StoreUnavailable,
  type TraceUnavailable,
} from "@plinth/runtime"

/** `plinth plugins lock --check` found that re-locking would change the lock, or that there is no lock yet (`missing`). */
export class LockOutOfDate extends Data.TaggedError("LockOutOfDate")<{
  readonly lock: string
  /** The plugin folder that was checked, for the command that fixes it. */
  readonly root?: string
  /** No lock file exists yet: nothing was ever pinned. */
  readonly missing?: boolean
  /** What re-locking would change, when known. */
  readonly changes?: LockChanges
}> {}

/** `plinth plugins describe --check` found manifests that differ from their plugins' code. */
export class ManifestsStale extends Data.TaggedError("ManifestsStale")<{
  readonly plugins: ReadonlyArray<string>
  /** Per stale plugin, what differs (the `--json` envelope carries it). */
  readonly differences?: ReadonlyArray<{ readonly id: string; readonly differences: ReadonlyArray<unknown> }>
}> {}

/** The command line is wrong in a way the parser does not catch itself, e.g. a command group run alone. */
export class UsageError extends Data.TaggedError("UsageError")<{
  readonly message: string
  /** The command whose `--help` explains the right usage. */
  readonly command: string
}> {}

/**
 * `--input` (its text, stdin or `--input-file`) or `--config` is not usable JSON (`detail` says why, after
 * the option name); found before anything is verified or started.
 */
export class InvalidJsonOption extends Data.TaggedError("InvalidJsonOption")<{
  readonly option: "--input" | "--input-file" | "--config" | "--set"
  readonly detail: string
}> {
  override get message() {
    return `${this.option} ${this.detail}`
  }
}

/**
 * A plugin operation (invoke, describe) failed with an error of the taxonomy:
 * the error itself, and its summary for people and job queues.
 */
export class PluginCallFailed extends Data.TaggedError("PluginCallFailed")<{
  readonly failure: PluginFailure
  readonly job: JobError
}> {}

/**
 * A plugin operation failed with something outside the taxonomy (a defect, an
 * unrecognised error). Such failures are fatal: retrying the unknown hides bugs.
 */
export class UnclassifiedFailure extends Data.TaggedError("UnclassifiedFailure")<{
  readonly job: JobError
}> {}

/** `plugins describe --write` could not store the declaration in plugin.json. */
export class ManifestWriteFailed extends Data.TaggedError("ManifestWriteFailed")<{
  readonly plugin: string
  readonly detail: string
}> {}

/** `plinth serve` could not start: its port, its state folder, or something else outside the taxonomy. */
export class ServeFailed extends Data.TaggedError("ServeFailed")<{
  readonly message: string
}> {}

/**
 * `plinth serve --cluster`: this runner's verified plugins differ from those
 * of the cluster's live runners, so it did not join (and never served). A
 * rejection of the code, as a failed verification is (exit 4).
 */
export class ClusterJoinRefused extends Data.TaggedError("ClusterJoinRefused")<{
  readonly message: string
  readonly clusterDigest: string
  readonly runnerDigest: string
  readonly runners: ReadonlyArray<string>
}> {}

/**
 * `plinth jobs …` could not get its answer from the running server: none
 * runs, it cannot be reached, it refused the token, the job is unknown (404),
 * or it refused the submission (400). One line in `detail`.
 */
export class JobsRequestFailed extends Data.TaggedError("JobsRequestFailed")<{
  readonly reason: "noServer" | "unreachable" | "unauthorized" | "notFound" | "refused" | "unexpected"
  readonly detail: string
  readonly status?: number
}> {
  override get message() {
    return this.detail
  }
}

/** `plinth jobs watch`: the job ended but did not complete; its exit code is its failure's (130 when cancelled). */
export class JobUnsuccessful extends Data.TaggedError("JobUnsuccessful")<{
  readonly job: string
  readonly status: "failed" | "cancelled"
  readonly error?: { readonly category: "input" | "transient" | "resource" | "fatal"; readonly tag: string; readonly message: string }
}> {
  override get message() {
    return this.status === "cancelled"
      ? `job ${this.job} was cancelled`
      : `job ${this.job} failed${this.error !== undefined ? ` [${this.error.tag}]: ${this.error.message}` : ""}`
  }
}

/** What a command handler can fail with; the handler reports it before failing. */
export type HandlerFailure =
  | PluginRejected
  | PluginNotFound
  | PluginCallFailed
  | UnclassifiedFailure
  | InvalidJsonOption
  | LockWriteFailed
  | ReportWriteFailed
  | ManifestWriteFailed
  | TraceUnavailable
  | SecretStoreUnavailable
  | StoreUnavailable
  | StoreSchemaMismatch
  | ConfigInvalid
  | PluginDisabled
  | LockOutOfDate
  | ManifestsStale
  | UsageError
  | ServeFailed
  | ClusterJoinRefused
  | JobsRequestFailed
  | JobUnsuccessful

/** Everything a `plinth` run can fail with, parsing included; each has an exit code in `ExitCode`. */
export type CommandFailure = HandlerFailure | ValidationError

/** What `invoke` and `describe` can fail with once their options have been read. */
export type OperationFailure = PluginRejected | PluginNotFound | PluginCallFailed | UnclassifiedFailure

const isRejection = Schema.is(PluginRejected)

/**
 * Sorts whatever a plugin operation failed with: rejections and an unknown id
 * stay as they are; errors of the taxonomy keep their category and fields;
 * anything else is fatal. `context` names the call for the job summary.
 */
export const classifyOperationFailure =
  (context: { readonly plugin: string; readonly instance: string; readonly time: Date }) =>
  (error: unknown): OperationFailure => {
    if (error instanceof PluginNotFound) return error
    if (isRejection(error)) return error
    if (isPluginFailure(error)) return new PluginCallFailed({ failure: error, job: toJobError(error, context) })
    return new UnclassifiedFailure({ job: toJobError(error, context) })
  }
