import { Schema } from "effect"
import { PluginId } from "./Ids.js"
import { relativePathProblem } from "./PluginPath.js"
import { decodeJsonText } from "./JsonText.js"
import { OwnRecord } from "./OwnRecord.js"
import type { Either } from "effect"

const semverPattern =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/

export const SemVer = Schema.String.pipe(
  Schema.pattern(semverPattern, { message: () => "expected a semantic version like 1.2.3" }),
).annotations({ description: "a semantic version like 1.2.3" })

/** The module the plugin starts from: a relative `.js`/`.mjs` path that stays inside the plugin folder. */
export const EntryPath = Schema.String.pipe(
  Schema.filter((path) => relativePathProblem(path) ?? true, { identifier: "EntryPath" }),
  Schema.filter((path) => /\.(m?js)$/.test(path) || "the entry must be an ESM .js or .mjs file"),
).annotations({ description: "a relative path to a .js or .mjs file inside the plugin folder" })

/** A JSON Schema document, as produced by `JSONSchema.make`. */
export const JsonSchemaDocument = OwnRecord({ key: Schema.String, value: Schema.Unknown }).annotations({
  description: "a JSON Schema (a JSON object)",
})

export const ActionName = Schema.String.pipe(
  Schema.pattern(/^[a-zA-Z][a-zA-Z0-9_-]{0,63}$/, { message: () => "an action name is 1-64 characters: a letter, then letters, digits, '_' or '-'" }),
).annotations({ description: "an action name: a letter, then up to 63 letters, digits, '_' or '-'" })

/** What a plugin declares about one action: the manifest copy of its live declaration. */
export const ActionDeclaration = Schema.Struct({
  description: Schema.String,
  input: JsonSchemaDocument,
  output: JsonSchemaDocument,
  streaming: Schema.optional(Schema.Boolean),
})
export type ActionDeclaration = typeof ActionDeclaration.Type

/** An environment variable name a plugin's worker may read. */
export const EnvVarName = Schema.String.pipe(Schema.pattern(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/)).annotations({
  description: "an environment variable name: a letter or '_', then up to 127 letters, digits or '_'",
})

/** What the sandbox grants the plugin's worker; everything not granted is denied. */
export const Permissions = Schema.Struct({
  env: Schema.optional(Schema.Array(EnvVarName)),
  dataDir: Schema.optional(Schema.Boolean),
  childProcess: Schema.optional(Schema.Boolean),
  workerThreads: Schema.optional(Schema.Boolean),
  /**
   * Network access. Only the OS isolation tier can withhold it (a network
   * namespace); under the permission model alone the network is always open.
   */
  network: Schema.optional(Schema.Boolean),
})
export type Permissions = typeof Permissions.Type

/** The V8 heap cap of a worker when the manifest names none, in MiB. */
export const DEFAULT_MEMORY_MIB = 512

/** How many calls one instance runs at once when the manifest names no cap; more wait, in order. */
export const DEFAULT_MAX_CONCURRENT = 64

/** What a plugin's worker may use. */
export const Resources = Schema.Struct({
  /** Calls one instance runs at once (more wait in FIFO order); default DEFAULT_MAX_CONCURRENT. */
  maxConcurrent: Schema.optional(Schema.Int.pipe(Schema.between(1, 4096)).annotations({ description: "a whole number of calls from 1 to 4096" })),
  /** The worker's V8 old-space cap in MiB (`--max-old-space-size`); default DEFAULT_MEMORY_MIB. */
  memoryMiB: Schema.optional(Schema.Int.pipe(Schema.between(16, 65536)).annotations({ description: "a whole number of MiB from 16 to 65536" })),
})
export type Resources = typeof Resources.Type

/**
 * A secret's name: what the plugin asks for (`ctx.secrets.get("API_TOKEN")`)
 * and the operator sets (`plinth secrets set <plugin> API_TOKEN`). Upper-case,
 * like the environment variables secrets usually replace, and safe as a JSON
 * key and on a command line.
 */
export const SecretName = Schema.String.pipe(
  Schema.pattern(/^[A-Z][A-Z0-9_]{0,63}$/, {
    message: () => "a secret name is 1-64 characters: an upper-case letter, then upper-case letters, digits or '_'",
  }),
).annotations({ description: "a secret name: an upper-case letter, then up to 63 upper-case letters, digits or '_'" })

/** One secret the plugin needs, written by its author in plugin.json (not generated from code). */
export const SecretDeclaration = Schema.Struct({
  name: SecretName,
  /** Whether the plugin cannot start without it; default true. */
  required: Schema.optional(Schema.Boolean.annotations({ description: "true or false (default true)" })),
  description: Schema.optional(
    Schema.String.pipe(Schema.maxLength(500)).annotations({ description: "a text of at most 500 characters: what the secret is for" }),
  ),
})
export type SecretDeclaration = typeof SecretDeclaration.Type

/** The secrets a manifest declares, each name once. */
export const SecretDeclarations = Schema.Array(SecretDeclaration).pipe(
  Schema.filter((declarations) => {
    const seen = new Set<string>()
    for (const { name } of declarations) {
      if (seen.has(name)) return `the secret '${name}' is declared twice`
      seen.add(name)
    }
    return true
  }),
).annotations({ description: "a list of { name, required, description }, each name once" })

/** Whether a declared secret must be set for the plugin to start (the default). */
export const isRequiredSecret = (declaration: SecretDeclaration): boolean => declaration.required !== false

export const PluginManifest = Schema.Struct({
  id: PluginId,
  version: SemVer,
  description: Schema.String.pipe(Schema.maxLength(2000)).annotations({ description: "a text of at most 2000 characters" }),
  entry: EntryPath,
  actions: Schema.optional(OwnRecord({ key: ActionName, value: ActionDeclaration })),
  config: Schema.optional(JsonSchemaDocument),
  permissions: Schema.optional(Permissions),
  resources: Schema.optional(Resources),
  /** The secrets its workers receive in the start handshake; none when absent. */
  secrets: Schema.optional(SecretDeclarations),
}).annotations({ identifier: "PluginManifest", parseOptions: { onExcessProperty: "error" } })
export type PluginManifest = typeof PluginManifest.Type

export const manifestCaps = { maxChars: 1024 * 1024, maxDepth: 64 } as const

/** Decodes `plugin.json` text; never throws. */
export const decodeManifest = (text: string): Either.Either<PluginManifest, string> =>
  decodeJsonText(PluginManifest, text, manifestCaps)
