import { Schema } from "effect"

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

export const ManagerEvent = Schema.Union(
  InstanceLoaded,
  InstanceUnloaded,
  InstanceEnabled,
  InstanceDisabled,
  WorkerCrashed,
  WorkerRestarted,
  BreakerOpened,
  ConfigChanged,
)
export type ManagerEvent = typeof ManagerEvent.Type
