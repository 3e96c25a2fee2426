import { Effect, JSONSchema, Option, Predicate, Schema, type Redacted, type Stream } from "effect"
import type { ActionDeclaration, PluginManifest } from "./Manifest.js"

/*
 * What a plugin's entry module default-exports. Pure data plus functions that
 * return Effects: the worker runtime decides how and where they run.
 */

/** A plugin asked for a file of its own that is not among its verified files. */
export class PluginFileNotFound extends Schema.TaggedError<PluginFileNotFound>()("PluginFileNotFound", {
  path: Schema.String,
}) {
  override get message() {
    return `'${this.path}' is not a verified file of the plugin`
  }
}

/**
 * The plugin's own files, as verified against the lock and handed to the
 * worker in memory. The plugin folder is not readable on disk from a worker:
 * this is how a plugin reads the assets it ships (paths relative to its
 * folder, `/`-separated, e.g. "data/words.txt").
 */
export interface PluginAssets {
  /** The bytes of a verified file (a fresh copy on each call). */
  readonly read: (path: string) => Effect.Effect<Uint8Array, PluginFileNotFound>
  /** A verified file decoded as UTF-8. */
  readonly readText: (path: string) => Effect.Effect<string, PluginFileNotFound>
  /** The paths of the verified files, sorted; with a prefix, only those under it ("data/"). */
  readonly list: (prefix?: string) => Effect.Effect<ReadonlyArray<string>>
}

/**
 * The secrets the plugin's manifest declares, as the host's secret store held
 * them when the worker started. Values stay `Redacted`: printing, logging or
 * serializing one shows `<redacted>`; `Redacted.value(secret)` is the text.
 */
export interface PluginSecrets {
  /** A declared secret that is set; none for an optional one left unset and for any name the manifest does not declare. */
  readonly get: (name: string) => Option.Option<Redacted.Redacted<string>>
  /** The names of the secrets that are set, sorted. */
  readonly names: ReadonlyArray<string>
}

/** Secrets for running handlers outside a worker (tests, in-process hosts): a fixed set. */
export const secretsOf = (values: ReadonlyMap<string, Redacted.Redacted<string>>): PluginSecrets => ({
  get: (name) => Option.fromNullable(values.get(name)),
  names: [...values.keys()].sort(),
})

/** What a running action can ask of the runtime. */
export interface ActionContext<Config> {
  /** The plugin's own verified files (its folder is not readable on disk). */
  readonly files: PluginAssets
  /** The instance's config, decoded with the plugin's config Schema (defaults applied). */
  readonly config: Config
  /** Reports how far the call has come; 0 ≤ fraction ≤ 1. */
  readonly progress: (fraction: number, message?: string) => Effect.Effect<void>
  /** The folder the manifest's `dataDir` grant lets the plugin write to, if granted. */
  readonly dataDir: string | undefined
  /** The plugin's declared secrets (never environment variables). */
  readonly secrets: PluginSecrets
}

interface ActionCommon<I, II, O, OI> {
  readonly description: string
  readonly input: Schema.Schema<I, II, never>
  readonly output: Schema.Schema<O, OI, never>
}

export interface UnaryAction<Config, I, II, O, OI, E> extends ActionCommon<I, II, O, OI> {
  readonly _kind: "unary"
  readonly handler: (input: I, context: ActionContext<Config>) => Effect.Effect<O, E>
}

export interface StreamingAction<Config, I, II, O, OI, E> extends ActionCommon<I, II, O, OI> {
  readonly _kind: "streaming"
  readonly stream: (input: I, context: ActionContext<Config>) => Stream.Stream<O, E>
}

/* The erased form the runtime works with; `any` is confined to these two aliases. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyAction = UnaryAction<any, any, any, any, any, any> | StreamingAction<any, any, any, any, any, any>

export const PluginDefinitionTypeId: unique symbol = Symbol.for("@plinth/domain/PluginDefinition")

export interface PluginDefinition<Config, ConfigIn> {
  readonly [PluginDefinitionTypeId]: typeof PluginDefinitionTypeId
  readonly config: Schema.Schema<Config, ConfigIn, never>
  readonly actions: Readonly<Record<string, AnyAction>>
  readonly setup?: ((config: Config) => Effect.Effect<void, unknown>) | undefined
  readonly teardown?: ((config: Config) => Effect.Effect<void>) | undefined
  /** Run in the worker when the host enables an instance that was disabled (not at start: `setup` is). */
  readonly onEnable?: ((config: Config) => Effect.Effect<void, unknown>) | undefined
  /** Run in the worker when the host disables the instance, once no call is in flight on it. */
  readonly onDisable?: ((config: Config) => Effect.Effect<void, unknown>) | undefined
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyPluginDefinition = PluginDefinition<any, any>

/** Builds the action table against a config type, so handlers see `context.config` typed. */
export interface ActionBuilder<Config> {
  readonly action: <I, II, O, OI, E>(
    spec: Omit<UnaryAction<Config, I, II, O, OI, E>, "_kind">,
  ) => UnaryAction<Config, I, II, O, OI, E>
  readonly streaming: <I, II, O, OI, E>(
    spec: Omit<StreamingAction<Config, I, II, O, OI, E>, "_kind">,
  ) => StreamingAction<Config, I, II, O, OI, E>
}

const builder: ActionBuilder<unknown> = {
  action: (spec) => ({ _kind: "unary", ...spec }),
  streaming: (spec) => ({ _kind: "streaming", ...spec }),
}

/**
 * Defines a plugin.
 *
 * An action may run more than once for one job: when the host (or a cluster
 * runner) dies while the job runs and the job carries an idempotency key, the
 * job is run again from the start, on that host after a restart or on another
 * runner; its result is recorded once. Without a key such a job fails with
 * `JobInterrupted` instead. So an action that is given idempotency keys must
 * be idempotent: running it twice has the effect of running it once.
 *
 * ```js
 * export default definePlugin({
 *   config: Schema.Struct({ greeting: Schema.optionalWith(Schema.String, { default: () => "Hello" }) }),
 *   actions: ({ action }) => ({
 *     greet: action({ description: "…", input: …, output: …, handler: (input, { config }) => Effect.succeed(…) }),
 *   }),
 * })
 * ```
 */
export const definePlugin = <Config, ConfigIn>(spec: {
  readonly config: Schema.Schema<Config, ConfigIn, never>
  readonly actions: (build: ActionBuilder<Config>) => Readonly<Record<string, AnyAction>>
  readonly setup?: (config: Config) => Effect.Effect<void, unknown>
  readonly teardown?: (config: Config) => Effect.Effect<void>
  readonly onEnable?: (config: Config) => Effect.Effect<void, unknown>
  readonly onDisable?: (config: Config) => Effect.Effect<void, unknown>
}): PluginDefinition<Config, ConfigIn> => ({
  [PluginDefinitionTypeId]: PluginDefinitionTypeId,
  config: spec.config,
  actions: spec.actions(builder as unknown as ActionBuilder<Config>),
  setup: spec.setup,
  teardown: spec.teardown,
  onEnable: spec.onEnable,
  onDisable: spec.onDisable,
})

export const isPluginDefinition = (u: unknown): u is AnyPluginDefinition =>
  Predicate.hasProperty(u, PluginDefinitionTypeId) &&
  Predicate.hasProperty(u, "actions") &&
  Predicate.hasProperty(u, "config") &&
  Schema.isSchema(u.config)

/** What a plugin declares about itself: the part of `plugin.json` generated from its Schemas. */
export interface PluginDeclaration {
  readonly actions: Readonly<Record<string, ActionDeclaration>>
  readonly config: Readonly<Record<string, unknown>>
}

const jsonSchemaOf = (schema: Schema.Schema.AnyNoContext): Record<string, unknown> =>
  JSONSchema.make(schema) as unknown as Record<string, unknown>

/** The declaration of a definition, with JSON Schemas made by `JSONSchema.make`. */
export const declarationOf = (definition: AnyPluginDefinition): PluginDeclaration => {
  const actions: Record<string, ActionDeclaration> = {}
  for (const name of Object.keys(definition.actions).sort()) {
    const action = definition.actions[name]!
    actions[name] = {
      description: action.description,
      input: jsonSchemaOf(action.input),
      output: jsonSchemaOf(action.output),
      ...(action._kind === "streaming" ? { streaming: true } : {}),
    }
  }
  return { actions, config: jsonSchemaOf(definition.config) }
}

/** JSON text with object keys sorted at every level, so equal documents compare equal. */
export const canonicalJson = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) =>
    Predicate.isRecord(v) && !Array.isArray(v)
      ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]]))
      : v,
  )

/**
 * One way a live declaration differs from the manifest: an action the code
 * defines that the manifest lacks ("added"), one the manifest has that the
 * code no longer defines ("removed"), a unary action that became streaming or
 * the reverse ("kind"), a changed description or input/output schema, or a
 * changed config schema (no action).
 */
export interface DeclarationDifference {
  readonly change: "added" | "removed" | "kind" | "description" | "input" | "output" | "config"
  readonly action?: string
}

/** Every difference between a manifest and a live declaration, actions by name; empty when none. */
export const declarationDifferences = (manifest: PluginManifest, live: PluginDeclaration): ReadonlyArray<DeclarationDifference> => {
  const differences: Array<DeclarationDifference> = []
  const declared = manifest.actions ?? {}
  for (const name of Object.keys(live.actions).sort()) {
    const liveAction = live.actions[name]!
    // Own keys only: an action named `toString` or `constructor` must not find Object.prototype's.
    const manifestAction = Object.hasOwn(declared, name) ? declared[name] : undefined
    if (manifestAction === undefined) {
      differences.push({ change: "added", action: name })
      continue
    }
    for (const part of ["description", "input", "output"] as const) {
      if (canonicalJson(manifestAction[part]) !== canonicalJson(liveAction[part])) differences.push({ change: part, action: name })
    }
    if ((manifestAction.streaming ?? false) !== (liveAction.streaming ?? false)) differences.push({ change: "kind", action: name })
  }
  for (const name of Object.keys(declared).sort()) {
    if (!Object.hasOwn(live.actions, name)) differences.push({ change: "removed", action: name })
  }
  if (canonicalJson(manifest.config ?? {}) !== canonicalJson(live.config)) differences.push({ change: "config" })
  return differences
}

/** A difference as one line for people. */
export const describeDifference = (difference: DeclarationDifference): string => {
  const name = difference.action ?? ""
  switch (difference.change) {
    case "added":
      return `action '${name}' is defined by the plugin but missing from the manifest`
    case "removed":
      return `action '${name}' is in the manifest but not defined by the plugin`
    case "kind":
      return `action '${name}': streaming differs from the manifest`
    case "description":
    case "input":
    case "output":
      return `action '${name}': ${difference.change} differs from the manifest`
    case "config":
      return "config schema differs from the manifest"
  }
}

/** How a live declaration differs from the manifest: one readable line per difference, empty when none. */
export const declarationDrift = (manifest: PluginManifest, live: PluginDeclaration): ReadonlyArray<string> =>
  declarationDifferences(manifest, live).map(describeDifference)

/** A no-op progress reporter, for running handlers outside a worker (tests, in-process hosts). */
export const ignoreProgress: ActionContext<unknown>["progress"] = () => Effect.void
