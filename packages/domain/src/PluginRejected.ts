import { Match, Schema } from "effect"
import { Digest } from "./Ids.js"

/*
 * Every reason a load is refused. Each variant carries only its evidence.
 * `plugin` is the folder name as found on disk (it may not be a valid id,
 * which is itself a reason for rejection).
 */

const Paths = Schema.Array(Schema.String)

export class IntegrityMismatch extends Schema.TaggedError<IntegrityMismatch>()("IntegrityMismatch", {
  plugin: Schema.String,
  expected: Digest,
  actual: Digest,
  added: Paths,
  removed: Paths,
  changed: Paths,
}) {}

export class MissingManifest extends Schema.TaggedError<MissingManifest>()("MissingManifest", {
  plugin: Schema.String,
}) {}

export class SchemaViolation extends Schema.TaggedError<SchemaViolation>()("SchemaViolation", {
  plugin: Schema.String,
  detail: Schema.String,
}) {}

export class UnlockedPlugin extends Schema.TaggedError<UnlockedPlugin>()("UnlockedPlugin", {
  plugin: Schema.String,
}) {}

export class MissingPluginDirectory extends Schema.TaggedError<MissingPluginDirectory>()("MissingPluginDirectory", {
  plugin: Schema.String,
}) {}

export class PluginImportError extends Schema.TaggedError<PluginImportError>()("PluginImportError", {
  plugin: Schema.String,
  detail: Schema.String,
}) {}

export class SymlinkEscape extends Schema.TaggedError<SymlinkEscape>()("SymlinkEscape", {
  plugin: Schema.String,
  offendingPath: Schema.String,
}) {}

export class LockFileMalformed extends Schema.TaggedError<LockFileMalformed>()("LockFileMalformed", {
  path: Schema.String,
  detail: Schema.String,
}) {}

export const PluginRejected = Schema.Union(
  IntegrityMismatch,
  MissingManifest,
  SchemaViolation,
  UnlockedPlugin,
  MissingPluginDirectory,
  PluginImportError,
  SymlinkEscape,
  LockFileMalformed,
)
export type PluginRejected = typeof PluginRejected.Type

/** The process exit code for a rejected load: 4, whatever the reason. */
export const exitCodeFor: (rejection: PluginRejected) => 4 = Match.type<PluginRejected>().pipe(
  Match.tagsExhaustive({
    IntegrityMismatch: () => 4 as const,
    MissingManifest: () => 4 as const,
    SchemaViolation: () => 4 as const,
    UnlockedPlugin: () => 4 as const,
    MissingPluginDirectory: () => 4 as const,
    PluginImportError: () => 4 as const,
    SymlinkEscape: () => 4 as const,
    LockFileMalformed: () => 4 as const,
  }),
)

const listPaths = (label: string, paths: ReadonlyArray<string>) =>
  paths.length === 0 ? [] : [`  ${label}: ${paths.join(", ")}`]

/** A readable explanation: which plugin, which rule, which files. */
export const explainRejection: (rejection: PluginRejected) => string = Match.type<PluginRejected>().pipe(
  Match.tagsExhaustive({
    IntegrityMismatch: (r) =>
      [
        `plugin '${r.plugin}' does not match PLUGINS.lock: its files changed since they were locked`,
        `  expected ${r.expected}`,
        `  actual   ${r.actual}`,
        ...listPaths("added", r.added),
        ...listPaths("removed", r.removed),
        ...listPaths("changed", r.changed),
      ].join("\n"),
    MissingManifest: (r) => `plugin folder '${r.plugin}' has no plugin.json`,
    SchemaViolation: (r) => `'${r.plugin}' breaks the plugin format:\n${indent(r.detail)}`,
    UnlockedPlugin: (r) => `plugin '${r.plugin}' is not in PLUGINS.lock: review it, then run 'plinth plugins lock'`,
    MissingPluginDirectory: (r) => `PLUGINS.lock pins plugin '${r.plugin}' but its folder is missing`,
    PluginImportError: (r) => `plugin '${r.plugin}' failed to import:\n${indent(r.detail)}`,
    SymlinkEscape: (r) => `plugin '${r.plugin}' has a symlink that leaves its folder: ${r.offendingPath}`,
    LockFileMalformed: (r) => `the lock file ${r.path} is malformed:\n${indent(r.detail)}`,
  }),
)

const indent = (text: string) =>
  text
    .split("\n")
    .map((line) => `  ${line}`)
    .join("\n")

/** The plugin a rejection is about, or undefined when it concerns the lock file as a whole. */
export const rejectedPlugin = (rejection: PluginRejected): string | undefined =>
  "plugin" in rejection ? rejection.plugin : undefined
