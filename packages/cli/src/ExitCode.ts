import { Cause, Exit, Match, Schema } from "effect"
import { exitCodeFor, type ErrorCategory, type PluginFailure } from "@plinth/domain"
import type { CommandFailure } from "./Failures.js"

/** The process exit codes of `plinth`; scripts and CI may rely on them. */
export const ExitCode = {
  Ok: 0,
  /** Anything unexpected: an unwritable lock or plugin.json, an unreadable trace file, a bug in plinth. */
  Failure: 1,
  /** The command line itself is wrong: unknown flag or subcommand, missing argument. */
  Usage: 2,
  /** `plugins lock --check`: the lock does not pin the plugins as they are on disk; `plugins describe --check`: a manifest differs from its code. */
  LockOutOfDate: 3,
  /** A plugin (or the lock) was rejected; the same code for every `PluginRejected` variant, and for a cluster runner whose plugins differ from the cluster's. */
  Rejected: 4,
  /**
   * `invoke`/`describe`: the plugin call failed in the `input` category: bad `--input`/`--config`
   * JSON, input the action's schema refuses, an unknown action. Change the call; retrying fails again.
   */
  Input: 5,
  /** `transient`: a timeout, an unexpected worker exit, a plugin's temporary failure. Retrying may work. */
  Transient: 6,
  /** `resource`: the plugin ran short, its worker ran out of heap (WorkerOutOfMemory), or was killed by SIGKILL (likely out of memory); or the memory budget could not admit it (AdmissionRefused, AdmissionTimeout). */
  Resource: 7,
  /** `fatal`: a defect, a sandbox denial, declaration drift, output the manifest refuses, a worker that would not start. Retrying will not help. */
  Fatal: 8,
  /** Interrupted by SIGINT/SIGTERM, as shells report it. */
  Interrupted: 130,
} as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

const isExitCode = Schema.is(Schema.Literal(...Object.values(ExitCode)))

const usage = () => ExitCode.Usage

/** The exit code for each error category of a plugin failure. */
export const exitCodeForCategory: { readonly [C in ErrorCategory]: ExitCode } = {
  input: ExitCode.Input,
  transient: ExitCode.Transient,
  resource: ExitCode.Resource,
  fatal: ExitCode.Fatal,
}

const input = () => ExitCode.Input
const transient = () => ExitCode.Transient
const resource = () => ExitCode.Resource
const fatal = () => ExitCode.Fatal

/** The exit code for a plugin failure, decided per variant; a new variant does not compile until it has one. */
export const exitCodeForPluginFailure: (failure: PluginFailure) => ExitCode = Match.type<PluginFailure>().pipe(
  Match.tagsExhaustive({
    PluginInputError: input,
    ActionNotFound: input,
    PluginTransientError: transient,
    InvokeTimeout: transient,
    WorkerExited: transient,
    PluginResourceError: resource,
    WorkerKilled: resource,
    WorkerOutOfMemory: resource,
    AdmissionRefused: resource,
    AdmissionTimeout: resource,
    PluginFatalError: fatal,
    WorkerStartFailed: fatal,
    InstanceFailed: fatal,
    SandboxDenied: fatal,
    ProtocolError: fatal,
    DeclarationDrift: fatal,
    OutputRejected: fatal,
    DefinitionInvalid: fatal,
    // The operator must set the secret first; retrying as it is fails again.
    MissingSecret: input,
  }),
)

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
    LockFileMissing: exitCodeFor,
    PluginCallFailed: (e) => exitCodeForPluginFailure(e.failure),
    UnclassifiedFailure: fatal,
    InvalidJsonOption: input,
    // An id that is not a folder under the root is a mistake on the command line, not a refusal.
    PluginNotFound: usage,
    LockWriteFailed: () => ExitCode.Failure,
    ReportWriteFailed: () => ExitCode.Failure,
    ManifestWriteFailed: () => ExitCode.Failure,
    TraceUnavailable: () => ExitCode.Failure,
    SecretStoreUnavailable: () => ExitCode.Failure,
    StoreUnavailable: () => ExitCode.Failure,
    StoreSchemaMismatch: () => ExitCode.Failure,
    // The caller's to fix: a config the manifest refuses, a plugin the operator disabled.
    ConfigInvalid: input,
    PluginDisabled: input,
    LockOutOfDate: () => ExitCode.LockOutOfDate,
    ManifestsStale: () => ExitCode.LockOutOfDate,
    UsageError: usage,
    ServeFailed: () => ExitCode.Failure,
    // The runner's code is not the cluster's: refused as a plugin that fails verification is.
    ClusterJoinRefused: () => ExitCode.Rejected,
    // An unknown job id is a mistake on the command line; a refused submission is the caller's input to change.
    JobsRequestFailed: (e) => (e.reason === "notFound" ? ExitCode.Usage : e.reason === "refused" ? ExitCode.Input : ExitCode.Failure),
    JobUnsuccessful: (e) => (e.status === "cancelled" ? ExitCode.Interrupted : e.error !== undefined ? exitCodeForCategory[e.error.category] : ExitCode.Fatal),
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
