import { Schema } from "effect"

/*
 * What the PluginManager itself refuses. These are not PluginFailures: they
 * never cross the worker boundary and nothing a plugin does can raise them.
 * Every one is the caller's to fix, so all are in the "input" category.
 */

/** An instance id outside 1–64 characters of a-z, 0-9, '_' and '-'; refused before any process starts. */
export class InvalidInstanceId extends Schema.TaggedError<InvalidInstanceId>()("InvalidInstanceId", {
  /** The value as given, quoted and cut short for a message. */
  value: Schema.String,
  reason: Schema.String,
}) {
  override get message() {
    return `${this.value} is not a usable instance id: ${this.reason}`
  }
}

/** No instance with this id is loaded. */
export class InstanceNotLoaded extends Schema.TaggedError<InstanceNotLoaded>()("InstanceNotLoaded", {
  instance: Schema.String,
  loaded: Schema.Array(Schema.String),
}) {
  override get message() {
    return `no instance '${this.instance}' is loaded (loaded: ${this.loaded.join(", ") || "none"}); load it first`
  }
}

/** The instance is disabled: by a caller, or by its circuit breaker (then `reason` says so). */
export class PluginDisabled extends Schema.TaggedError<PluginDisabled>()("PluginDisabled", {
  plugin: Schema.String,
  instance: Schema.String,
  reason: Schema.optional(Schema.String),
}) {
  override get message() {
    return `instance '${this.instance}' of '${this.plugin}' is disabled${this.reason !== undefined ? ` (${this.reason})` : ""}; enable it (or reset it) to call it`
  }
}

/** A config refused on the host (the manifest's config JSON Schema) or in the worker (the plugin's Schema). */
export class ConfigInvalid extends Schema.TaggedError<ConfigInvalid>()("ConfigInvalid", {
  plugin: Schema.String,
  /** The fields at fault, dotted paths, sorted; "(root)" for the config itself. */
  fieldsInvalid: Schema.Array(Schema.String),
  detail: Schema.String,
}) {
  override get message() {
    return `the config for '${this.plugin}' is refused: ${this.detail}`
  }
}

export type ManagerError = InvalidInstanceId | InstanceNotLoaded | PluginDisabled | ConfigInvalid

/** The manager's own refusals are all the caller's to fix. */
export const managerErrorCategory = (_error: ManagerError): "input" => "input"
