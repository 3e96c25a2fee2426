import { Match, Schema } from "effect"
import { Digest } from "./Ids.js"

/*
 * Every reason a load is refused. Each variant carries only its evidence.
 * `plugin` is the folder name as found on disk (it may not be a valid id,
 * which is itself a reason for rejection).
 */

const Paths = Schema.Array(Schema.String)

/**
 * The lock file the plugins were checked against, as the user named it
 * (`--lock`); absent when the check did not come from a lock file read from disk.
 */
const LockPath = Schema.optional(Schema.String)

export class IntegrityMismatch extends Schema.TaggedError<IntegrityMismatch>()("IntegrityMismatch", {
  plugin: Schema.String,
  expected: Digest,
  actual: Digest,
  added: Paths,
  removed: Paths,
  changed: Paths,
  lock: LockPath,
}) {
  override get message(): string {
    return explainRejection(this)
  }
}

export class MissingManifest extends Schema.TaggedError<MissingManifest>()("MissingManifest", {
  plugin: Schema.String,
}) {
  override get message(): string {
    return explainRejection(this)
  }
}

export class SchemaViolation extends Schema.TaggedError<SchemaViolation>()("SchemaViolation", {
  plugin: Schema.String,
  detail: Schema.String,
}) {
  override get message(): string {
    return explainRejection(this)
  }
}

export class UnlockedPlugin extends Schema.TaggedError<UnlockedPlugin>()("UnlockedPlugin", {
  plugin: Schema.String,
  lock: LockPath,
}) {
  override get message(): string {
    return explainRejection(this)
  }
}

export class MissingPluginDirectory extends Schema.TaggedError<MissingPluginDirectory>()("MissingPluginDirectory", {
  plugin: Schema.String,
  lock: LockPath,
}) {
  override get message(): string {
    return explainRejection(this)
  }
}

export class PluginImportError extends Schema.TaggedError<PluginImportError>()("PluginImportError", {
  plugin: Schema.String,
  detail: Schema.String,
}) {
  override get message(): string {
    return explainRejection(this)
  }
}

export class SymlinkEscape extends Schema.TaggedError<SymlinkEscape>()("SymlinkEscape", {
  plugin: Schema.String,
  offendingPath: Schema.String,
}) {
  override get message(): string {
    return explainRejection(this)
  }
}

export class LockFileMalformed extends Schema.TaggedError<LockFileMalformed>()("LockFileMalformed", {
  path: Schema.String,
  detail: Schema.String,
}) {
  override get message(): string {
    return explainRejection(this)
  }
}

/**
 * There is no lock file at `path` (nothing there at all: a folder or FIFO
 * there is `LockFileMalformed`). `root` is the plugin folder the command was
 * given, so the explanation can say exactly what to run.
 */
export class LockFileMissing extends Schema.TaggedError<LockFileMissing>()("LockFileMissing", {
  path: Schema.String,
  root: Schema.optional(Schema.String),
}) {
  override get message(): string {
    return explainRejection(this)
  }
}

export const PluginRejected = Schema.Union(
  IntegrityMismatch,
  MissingManifest,
  SchemaViolation,
  UnlockedPlugin,
  MissingPluginDirectory,
  PluginImportError,
  SymlinkEscape,
  LockFileMalformed,
  LockFileMissing,
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
    LockFileMissing: () => 4 as const,
  }),
)

const listPaths = (label: string, paths: ReadonlyArray<string>) =>
  paths.length === 0 ? [] : [`  ${label}: ${paths.join(", ")}`]

/** A readable explanation: which plugin, which rule, which files. */
export const explainRejection: (rejection: PluginRejected) => string = Match.type<PluginRejected>().pipe(
  Match.tagsExhaustive({
    IntegrityMismatch: (r) =>
      [
        `plugin '${r.plugin}' does not match ${lockName(r.lock)}: its files changed since they were locked`,
        `  expected ${r.expected}`,
        `  actual   ${r.actual}`,
        ...listPaths("added", r.added),
        ...listPaths("removed", r.removed),
        ...listPaths("changed", r.changed),
      ].join("\n"),
    MissingManifest: (r) => `plugin folder '${r.plugin}' has no plugin.json`,
    SchemaViolation: (r) => withDetail(`plugin '${r.plugin}' breaks the plugin format`, r.detail),
    UnlockedPlugin: (r) =>
      `plugin '${r.plugin}' is not in ${lockName(r.lock)}: review it, then run '${lockCommand(undefined, r.lock)}'`,
    MissingPluginDirectory: (r) => `${capitalized(lockName(r.lock))} pins plugin '${r.plugin}' but its folder is missing`,
    PluginImportError: (r) => withDetail(`plugin '${r.plugin}' failed to import`, r.detail),
    SymlinkEscape: (r) => `plugin '${r.plugin}' has a symlink that leaves its folder: ${r.offendingPath}`,
    LockFileMalformed: (r) => withDetail(`the lock file ${r.path} is malformed`, r.detail),
    LockFileMissing: (r) => `no lock file at ${r.path}; create one with: ${lockCommand(r.root, r.path)}`,
  }),
)

/** The name of the lock a rejection refers to: the file as the user gave it, when known. */
const lockName = (lock: string | undefined) => lock ?? "the lock"

const capitalized = (text: string) => text.charAt(0).toUpperCase() + text.slice(1)

/** Quotes a path for a POSIX shell when it needs it, so a printed command can be pasted. */
export const shellWord = (word: string): string => (/^[A-Za-z0-9_./:=@%+-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`)

/** The command that (re)creates the lock, with the options the user gave (`--lock` only when not the default). */
export const lockCommand = (root: string | undefined, lock: string | undefined): string =>
  [
    "plinth plugins lock",
    ...(root !== undefined ? [`--root ${shellWord(root)}`] : []),
    ...(lock !== undefined && lock !== DEFAULT_LOCK_FILE ? [`--lock ${shellWord(lock)}`] : []),
  ].join(" ")

/** The lock file a command uses when not told otherwise. */
export const DEFAULT_LOCK_FILE = "PLUGINS.lock"

/** A headline and its detail: on one line when the detail is one line, else one indented line per problem. */
const withDetail = (headline: string, detail: string) =>
  detail.includes("\n") ? `${headline}:\n${indent(detail)}` : `${headline}: ${detail}`

const indent = (text: string) =>
  text
    .split("\n")
    .map((line) => `  ${line}`)
    .join("\n")

/** The plugin a rejection is about, or undefined when it concerns the lock file as a whole. */
export const rejectedPlugin = (rejection: PluginRejected): string | undefined =>
  "plugin" in rejection ? rejection.plugin : undefined
