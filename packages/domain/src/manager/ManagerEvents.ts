import { Schema } from "effect"
import { BlockReason } from "../scheduling/Decision.js"

/*
 * Lifecycle events of managed instances, as a host sees them on the
 * manager's event stream. Plain tagged structs: they can be logged, sent or
 * stored as JSON as they are. Configs are not carried (they may be large and,
 * later, hold references to secrets): `configChanged` says that, not what.
 */

const common = { plugin: Schema.String, instance: Schema.String, at: Schema.Number }

export const InstanceLoaded = Schema.TaggedStruct("loaded", { ...common, pid: Schema.optional(Schema.Number), warm: Schema.Boolean })
export const InstanceUnloaded = Schema.TaggedStruct("unloaded", common)
export const InstanceEnabled = Schema.TaggedStruct("enabled", common)
export const InstanceDisabled = Schema.TaggedStruct("disabled", { ...common, reason: Schema.optional(Schema.String) })
export const WorkerCrashed = Schema.TaggedStruct("crashed", {
  ...common,
  pid: Schema.optional(Schema.Number),
  exitCode: Schema.NullOr(Schema.Number),
  signal: Schema.NullOr(Schema.String),
})
export const WorkerRestarted = Schema.TaggedStruct("restarted", { ...common, pid: Schema.optional(Schema.Number) })
export const BreakerOpened = Schema.TaggedStruct("breakerOpened", { ...common, failures: Schema.Number, lastFailure: Schema.String })
export const ConfigChanged = Schema.TaggedStruct("configChanged", common)
/**
 * The manager stopped an idle instance to make room: for another instance to
 * start (`admission`, the safety and queue policies) or for a call that ran
 * short of memory to be retried (`retry`). `for` is the instance it made room for.
 */
export const InstanceEvicted = Schema.TaggedStruct("evicted", {
  ...common,
  cause: Schema.Literal("admission", "retry"),
  for: Schema.String,
})
/**
 * A call failed for lack of memory and is tried again on a fresh worker;
 * `attempt` is the attempt now starting (2 for the first retry), `failure` the
 * tag of the failure that caused it, `evicted` what was stopped before it.
 */
export const RetryStarted = Schema.TaggedStruct("retryStarted", {
  ...common,
  action: Schema.String,
  attempt: Schema.Number,
  maxAttempts: Schema.Number,
  failure: Schema.String,
  evicted: Schema.Array(Schema.String),
})
/** Under the queue policy, the instance waits to start until it fits the memory budget; `reason` says what holds it. */
export const AdmissionBlocked = Schema.TaggedStruct("admissionBlocked", { ...common, reason: BlockReason })

export const ManagerEvent = Schema.Union(
  InstanceLoaded,
  InstanceUnloaded,
  InstanceEnabled,
  InstanceDisabled,
  WorkerCrashed,
  WorkerRestarted,
  BreakerOpened,
  ConfigChanged,
  InstanceEvicted,
  RetryStarted,
  AdmissionBlocked,
)
export type ManagerEvent = typeof ManagerEvent.Type
