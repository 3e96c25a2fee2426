import { Match, Predicate, Schema } from "effect"
import { DefinitionRule } from "./DefinitionRules.js"
import { BlockReason, describeBlockReason } from "./scheduling/Decision.js"

/*
 * How a plugin call can fail, sorted into four categories that decide what a
 * caller (or a job queue) does next:
 *   input     the caller must change something; retrying the same call fails again
 *   transient it may work next time (a timeout, a crash that a restart cures)
 *   resource  the machine ran short (memory, disk); retry after freeing it
 *   fatal     a bug or a refusal; retrying will not help
 * Every error is a Schema.TaggedError so that it crosses the worker boundary
 * with its structured fields intact.
 */

export const ErrorCategory = Schema.Literal("input", "transient", "resource", "fatal")
export type ErrorCategory = typeof ErrorCategory.Type

/** Whether a failure of each category is worth retrying without a change. */
export const retriableByDefault: { readonly [C in ErrorCategory]: boolean } = {
  input: false,
  transient: true,
  resource: true,
  fatal: false,
}

export const ResourceShortfall = Schema.Struct({
  resource: Schema.Literal("memory_mb", "disk_mb", "gpu_memory_mb"),
  needed: Schema.Number,
  available: Schema.Number,
})
export type ResourceShortfall = typeof ResourceShortfall.Type

// ---- Raised by plugin code -------------------------------------------------

/** The input or the config cannot be used; the caller must fix it. */
export class PluginInputError extends Schema.TaggedError<PluginInputError>()("PluginInputError", {
  message: Schema.String,
  fieldsInvalid: Schema.optional(Schema.Array(Schema.String)),
}) {}

/** A temporary failure the plugin expects to go away. */
export class PluginTransientError extends Schema.TaggedError<PluginTransientError>()("PluginTransientError", {
  message: Schema.String,
  retryAfterSeconds: Schema.optional(Schema.Number),
}) {}

/**
 * How many times the manager tried a call that kept running short of memory,
 * each retry on a fresh worker after evicting idle ones (retry after eviction);
 * set on the failure it finally returns, absent when the call was tried once.
 */
const attempts = Schema.optional(Schema.Int.pipe(Schema.positive()))

const afterAttempts = (n: number | undefined) => (n !== undefined && n > 1 ? ` (${n} attempts, each on a fresh worker)` : "")

/** The plugin ran short of a resource. */
export class PluginResourceError extends Schema.TaggedError<PluginResourceError>()("PluginResourceError", {
  message: Schema.String,
  shortfall: Schema.optional(ResourceShortfall),
  attempts,
}) {}

/** A permanent failure for these inputs. Also what any unrecognised failure becomes. */
export class PluginFatalError extends Schema.TaggedError<PluginFatalError>()("PluginFatalError", {
  message: Schema.String,
}) {}

// ---- Raised by the runtime around the plugin -------------------------------

/** The call did not finish in time; the worker was asked to stop it (and killed if it did not). */
export class InvokeTimeout extends Schema.TaggedError<InvokeTimeout>()("InvokeTimeout", {
  plugin: Schema.String,
  action: Schema.String,
  timeoutMillis: Schema.Number,
}) {
  override get message() {
    return `${this.plugin}.${this.action} did not finish within ${this.timeoutMillis} ms`
  }
}

/** The worker was killed by a signal nobody in the host sent: most often the kernel's out-of-memory killer. */
export class WorkerKilled extends Schema.TaggedError<WorkerKilled>()("WorkerKilled", {
  plugin: Schema.String,
  exitCode: Schema.NullOr(Schema.Number),
  signal: Schema.NullOr(Schema.String),
  attempts,
}) {
  override get message() {
    return `the worker of '${this.plugin}' was killed (signal ${this.signal}, exit code ${this.exitCode}), likely out of memory${afterAttempts(this.attempts)}`
  }
}

/**
 * The worker died of V8 heap exhaustion: it reached its cap (the manifest's
 * `resources.memoryMiB`) and aborted. A resource failure, never transient:
 * the same input will exhaust the same cap again.
 */
export class WorkerOutOfMemory extends Schema.TaggedError<WorkerOutOfMemory>()("WorkerOutOfMemory", {
  plugin: Schema.String,
  exitCode: Schema.NullOr(Schema.Number),
  signal: Schema.NullOr(Schema.String),
  attempts,
}) {
  override get message() {
    return `the worker of '${this.plugin}' ran out of JavaScript heap${afterAttempts(this.attempts)}; raise resources.memoryMiB in its plugin.json if the input needs more`
  }
}

/** The worker process ended unexpectedly (not by SIGKILL); a restart usually cures it. */
export class WorkerExited extends Schema.TaggedError<WorkerExited>()("WorkerExited", {
  plugin: Schema.String,
  exitCode: Schema.NullOr(Schema.Number),
  signal: Schema.NullOr(Schema.String),
  detail: Schema.String,
  /** The last few KiB the worker wrote to stderr (control sequences removed): usually the cause. */
  stderrTail: Schema.optional(Schema.String),
}) {
  override get message() {
    return `the worker of '${this.plugin}' exited (code ${this.exitCode}, signal ${this.signal}): ${this.detail}`
  }
}

/** A worker crashed, hung, or could not load its plugin before it was ready. */
export class WorkerStartFailed extends Schema.TaggedError<WorkerStartFailed>()("WorkerStartFailed", {
  plugin: Schema.String,
  reason: Schema.String,
  stderrTail: Schema.String,
  exitCode: Schema.optional(Schema.NullOr(Schema.Number)),
  signal: Schema.optional(Schema.NullOr(Schema.String)),
}) {
  override get message() {
    return `the worker of '${this.plugin}' failed to start: ${this.reason}`
  }
}

/** The instance used up its restart budget and stays stopped. */
export class InstanceFailed extends Schema.TaggedError<InstanceFailed>()("InstanceFailed", {
  plugin: Schema.String,
  instance: Schema.String,
  restarts: Schema.Number,
  lastError: Schema.String,
}) {
  override get message() {
    return `instance '${this.instance}' of '${this.plugin}' failed after ${this.restarts} restarts: ${this.lastError}`
  }
}

/** The sandbox refused something the manifest does not grant. */
export class SandboxDenied extends Schema.TaggedError<SandboxDenied>()("SandboxDenied", {
  permission: Schema.Literal("fs-read", "fs-write", "child-process", "worker-threads", "env", "import", "signal", "other"),
  resource: Schema.String,
  /** Why, when the sandbox knows more than the permission (an import: what the plugin may import instead). */
  detail: Schema.optional(Schema.String),
}) {
  override get message() {
    return `the sandbox denied ${this.permission} access to ${this.resource || "a resource"}${this.detail !== undefined ? `: ${this.detail}` : ""}`
  }
}

/** The action is not declared by the plugin. */
export class ActionNotFound extends Schema.TaggedError<ActionNotFound>()("ActionNotFound", {
  plugin: Schema.String,
  action: Schema.String,
}) {
  override get message() {
    return `the plugin '${this.plugin}' has no action '${this.action}'`
  }
}

/** A message across the worker boundary was not what the protocol allows. */
export class ProtocolError extends Schema.TaggedError<ProtocolError>()("ProtocolError", {
  detail: Schema.String,
}) {
  override get message() {
    return `a message broke the worker protocol: ${this.detail}`
  }
}

/** What the plugin declares at run time differs from its manifest. */
export class DeclarationDrift extends Schema.TaggedError<DeclarationDrift>()("DeclarationDrift", {
  plugin: Schema.String,
  differences: Schema.Array(Schema.String),
}) {
  override get message() {
    return `the plugin '${this.plugin}' declares something other than its manifest:\n  ${this.differences.join("\n  ")}`
  }
}

/**
 * The worker sent a result or a stream item that its reviewed manifest's
 * output schema refuses. The host checks every value before it reaches the
 * caller and kills the worker that sent it: it no longer keeps its contract.
 */
export class OutputRejected extends Schema.TaggedError<OutputRejected>()("OutputRejected", {
  plugin: Schema.String,
  action: Schema.String,
  detail: Schema.String,
}) {
  override get message() {
    return `'${this.plugin}' sent output for '${this.action}' that its manifest does not allow (${this.detail}); its worker was stopped`
  }
}

/**
 * The plugin's definition breaks a rule of `definePlugin` (DefinitionRules.ts):
 * a streaming action written with `handler`, a missing Schema, a handler that
 * returns something other than an Effect. Found when the worker loads the
 * plugin (describe, start) or, for what a handler returns, at the call.
 */
export class DefinitionInvalid extends Schema.TaggedError<DefinitionInvalid>()("DefinitionInvalid", {
  plugin: Schema.String,
  /** The action at fault; absent when the rule is about the plugin as a whole (its config, setup, teardown). */
  action: Schema.optional(Schema.String),
  rule: DefinitionRule,
  /** What the rule asks for and what was found instead. */
  detail: Schema.String,
}) {
  override get message() {
    return `the definition of '${this.plugin}'${this.action !== undefined ? `, action '${this.action}',` : ""} breaks the rule '${this.rule}': ${this.detail}`
  }
}

// ---- Raised by the manager before a call, by its scheduling policy ----------
// Resource failures: the machine (its memory budget) is short, nothing is wrong
// with the call. Raised before any attempt, they are not the manager's retry
// after eviction (admission has already evicted what it could); a job queue
// may retry them later.

/** The `safety` policy refused to start an instance: it does not fit the memory budget beside the busy instances, or at all. */
export class AdmissionRefused extends Schema.TaggedError<AdmissionRefused>()("AdmissionRefused", {
  plugin: Schema.String,
  instance: Schema.String,
  reason: BlockReason,
}) {
  override get message() {
    return `'${this.instance}' of '${this.plugin}' was not started: ${describeBlockReason(this.reason)}; raise the memory budget or lower its resources.memoryMiB`
  }
}

/** The `queue` policy waited its whole timeout for an instance to fit the memory budget. */
export class AdmissionTimeout extends Schema.TaggedError<AdmissionTimeout>()("AdmissionTimeout", {
  plugin: Schema.String,
  instance: Schema.String,
  timeoutMillis: Schema.Number,
  /** Why it was still waiting when the time ran out. */
  reason: BlockReason,
}) {
  override get message() {
    return `'${this.instance}' of '${this.plugin}' waited ${this.timeoutMillis} ms to start and still did not fit: ${describeBlockReason(this.reason)}; retry later, raise the memory budget or the admission timeout`
  }
}

/**
 * The manifest declares secrets as required that the secret store does not
 * hold for this plugin. Found before any worker starts; it names the missing
 * secrets, never a value. An input error: the operator must set them.
 */
export class MissingSecret extends Schema.TaggedError<MissingSecret>()("MissingSecret", {
  plugin: Schema.String,
  names: Schema.Array(Schema.String),
}) {
  override get message() {
    const plural = this.names.length === 1 ? "" : "s"
    return `the plugin '${this.plugin}' needs the secret${plural} ${this.names.join(", ")}, not set in the secret store; nothing was started`
  }
}

/** Every failure a plugin call can surface; this union is what crosses the worker boundary. */
export const PluginFailure = Schema.Union(
  PluginInputError,
  PluginTransientError,
  PluginResourceError,
  PluginFatalError,
  InvokeTimeout,
  WorkerKilled,
  WorkerOutOfMemory,
  WorkerExited,
  WorkerStartFailed,
  InstanceFailed,
  SandboxDenied,
  ActionNotFound,
  ProtocolError,
  DeclarationDrift,
  OutputRejected,
  DefinitionInvalid,
  AdmissionRefused,
  AdmissionTimeout,
  MissingSecret,
)
export type PluginFailure = typeof PluginFailure.Type

const pluginFailureTags: ReadonlySet<string> = new Set(PluginFailure.members.map((member) => member._tag))

export const isPluginFailure = (u: unknown): u is PluginFailure =>
  Predicate.hasProperty(u, "_tag") && typeof u._tag === "string" && pluginFailureTags.has(u._tag) && Schema.is(PluginFailure)(u)

export const categoryOf: (failure: PluginFailure) => ErrorCategory = Match.type<PluginFailure>().pipe(
  Match.tagsExhaustive({
    PluginInputError: () => "input" as const,
    ActionNotFound: () => "input" as const,
    PluginTransientError: () => "transient" as const,
    InvokeTimeout: () => "transient" as const,
    WorkerExited: () => "transient" as const,
    PluginResourceError: () => "resource" as const,
    WorkerKilled: () => "resource" as const,
    WorkerOutOfMemory: () => "resource" as const,
    AdmissionRefused: () => "resource" as const,
    AdmissionTimeout: () => "resource" as const,
    PluginFatalError: () => "fatal" as const,
    WorkerStartFailed: () => "fatal" as const,
    InstanceFailed: () => "fatal" as const,
    SandboxDenied: () => "fatal" as const,
    ProtocolError: () => "fatal" as const,
    DeclarationDrift: () => "fatal" as const,
    OutputRejected: () => "fatal" as const,
    DefinitionInvalid: () => "fatal" as const,
    MissingSecret: () => "input" as const,
  }),
)

/** A flat summary of any failure, enough for a UI to show a failure card and a retry button. */
export class JobError extends Schema.Class<JobError>("JobError")({
  category: ErrorCategory,
  tag: Schema.String,
  message: Schema.String,
  retriable: Schema.Boolean,
  plugin: Schema.String,
  instance: Schema.String,
  time: Schema.DateFromString,
  retryAfterSeconds: Schema.optional(Schema.Number),
  fieldsInvalid: Schema.optional(Schema.Array(Schema.String)),
  shortfall: Schema.optional(ResourceShortfall),
}) {}

const describeUnknown = (u: unknown): string => {
  if (u instanceof Error) return `${u.name}: ${u.message}`
  if (Predicate.hasProperty(u, "message") && typeof u.message === "string") return u.message
  try {
    return JSON.stringify(u) ?? String(u)
  } catch {
    return String(u)
  }
}

/**
 * Classifies anything that went wrong: taxonomy errors keep their category and
 * structured fields; anything else (a defect, a foreign error) is fatal,
 * because auto-retrying the unknown hides bugs.
 */
export const toJobError = (
  failure: unknown,
  context: { readonly plugin: string; readonly instance: string; readonly time: Date },
): JobError => {
  if (!isPluginFailure(failure)) {
    return new JobError({ category: "fatal", tag: "Unknown", message: describeUnknown(failure), retriable: false, ...context })
  }
  const category = categoryOf(failure)
  const retriable = failure._tag === "InvokeTimeout" || failure._tag === "WorkerExited" ? true : retriableByDefault[category]
  return new JobError({
    category,
    tag: failure._tag,
    message: failure.message,
    retriable,
    ...context,
    ...(failure._tag === "PluginTransientError" && failure.retryAfterSeconds !== undefined
      ? { retryAfterSeconds: failure.retryAfterSeconds }
      : {}),
    ...(failure._tag === "PluginInputError" && failure.fieldsInvalid !== undefined ? { fieldsInvalid: failure.fieldsInvalid } : {}),
    ...(failure._tag === "PluginResourceError" && failure.shortfall !== undefined ? { shortfall: failure.shortfall } : {}),
  })
}
