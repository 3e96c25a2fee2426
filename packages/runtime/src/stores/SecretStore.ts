import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Context, Data, Effect, Either, Layer, Redacted, Schema } from "effect"
import { decodeJsonText, PluginId, SecretName } from "@plinth/domain"

/*
 * The secrets operators set for plugins, kept apart from everything else
 * Plinth writes: `<dataDir>/secrets/` (mode 0700) holds one file per plugin,
 * `<plugin>.json` (mode 0600), written whole to a temporary file and renamed
 * over the old one, so a reader sees the old set or the new one, never half.
 * A value is `Redacted` from the moment it is read: printing, logging or
 * serializing it shows `<redacted>`. Each plugin's scope is its own file; a
 * plugin's worker receives only the secrets its manifest declares (ADR 0026).
 * Writers in one process are serialized; two processes writing one plugin's
 * secrets at once keep the last writer's set.
 */

/** The folder under the data directory that holds the secrets. */
export const SECRETS_FOLDER = "secrets"

/** A name or plugin id the store refuses; nothing was read or written. */
export class SecretNameInvalid extends Data.TaggedError("SecretNameInvalid")<{
  readonly what: "plugin" | "secret"
  readonly value: string
  readonly detail: string
}> {
  override get message() {
    return `'${this.value}' is not a valid ${this.what === "plugin" ? "plugin id" : "secret name"}: ${this.detail}`
  }
}

/** The secret store's files could not be read or written; `detail` never holds a value. */
export class SecretStoreUnavailable extends Data.TaggedError("SecretStoreUnavailable")<{
  readonly path: string
  readonly detail: string
}> {
  override get message() {
    return `the secret store at '${this.path}' cannot be used: ${this.detail}`
  }
}

export type SecretStoreError = SecretNameInvalid | SecretStoreUnavailable

export class SecretStore extends Context.Tag("@plinth/runtime/SecretStore")<
  SecretStore,
  {
    /** Sets (or replaces) one secret of a plugin. */
    readonly set: (plugin: string, name: string, value: Redacted.Redacted<string>) => Effect.Effect<void, SecretStoreError>
    /** The secrets of `names` that are set for the plugin; names not set are absent from the map. */
    readonly get: (
      plugin: string,
      names: ReadonlyArray<string>,
    ) => Effect.Effect<ReadonlyMap<string, Redacted.Redacted<string>>, SecretStoreError>
    /** Names only, sorted: one plugin's, or every plugin's (plugins sorted) without one. */
    readonly list: (plugin?: string) => Effect.Effect<ReadonlyArray<{ readonly plugin: string; readonly names: ReadonlyArray<string> }>, SecretStoreError>
    /** Removes one secret; true when it was set. Removing a plugin's last secret removes its file. */
    readonly remove: (plugin: string, name: string) => Effect.Effect<boolean, SecretStoreError>
  }
>() {}

const validPlugin = Schema.decodeUnknownEither(PluginId)
const validName = Schema.decodeUnknownEither(SecretName)

const checkPlugin = (plugin: string) =>
  Either.isRight(validPlugin(plugin))
    ? Effect.succeed(plugin)
    : Effect.fail(new SecretNameInvalid({ what: "plugin", value: plugin, detail: "a plugin id is 1-64 characters of a-z, 0-9 and inner '-'" }))

const checkName = (name: string) =>
  Either.isRight(validName(name))
    ? Effect.succeed(name)
    : Effect.fail(
        new SecretNameInvalid({ what: "secret", value: name, detail: "an upper-case letter, then up to 63 upper-case letters, digits or '_'" }),
      )

/** One plugin's file: its secrets by name. */
const SecretsFile = Schema.Struct({
  version: Schema.Literal(1),
  secrets: Schema.Record({ key: SecretName, value: Schema.String }),
})

const fileCaps = { maxChars: 16 * 1024 * 1024, maxDepth: 4 } as const

/** In memory, values stay plain only inside this module; everything handed out is Redacted. */
interface Backend {
  readonly read: (plugin: string) => Effect.Effect<Map<string, string>, SecretStoreUnavailable>
  readonly write: (plugin: string, secrets: ReadonlyMap<string, string>) => Effect.Effect<void, SecretStoreUnavailable>
  readonly plugins: Effect.Effect<ReadonlyArray<string>, SecretStoreUnavailable>
}

const make = (backend: Backend) =>
  Effect.map(Effect.makeSemaphore(1), (writing) =>
    SecretStore.of({
      set: (plugin, name, value) =>
        Effect.zipRight(
          Effect.zip(checkPlugin(plugin), checkName(name)),
          writing.withPermits(1)(
            Effect.gen(function* () {
              const secrets = yield* backend.read(plugin)
              secrets.set(name, Redacted.value(value))
              yield* backend.write(plugin, secrets)
            }),
          ),
        ),
      get: (plugin, names) =>
        Effect.gen(function* () {
          yield* checkPlugin(plugin)
          for (const name of names) yield* checkName(name)
          const secrets = yield* backend.read(plugin)
          const found = new Map<string, Redacted.Redacted<string>>()
          for (const name of names) {
            const value = secrets.get(name)
            if (value !== undefined) found.set(name, Redacted.make(value))
          }
          return found
        }),
      list: (plugin) =>
        Effect.gen(function* () {
          const plugins = plugin === undefined ? yield* backend.plugins : [yield* checkPlugin(plugin)]
          const listed: Array<{ plugin: string; names: ReadonlyArray<string> }> = []
          for (const id of plugins) {
            const names = [...(yield* backend.read(id)).keys()].sort()
            if (names.length > 0 || plugin !== undefined) listed.push({ plugin: id, names })
          }
          return listed
        }),
      remove: (plugin, name) =>
        Effect.zipRight(
          Effect.zip(checkPlugin(plugin), checkName(name)),
          writing.withPermits(1)(
            Effect.gen(function* () {
              const secrets = yield* backend.read(plugin)
              if (!secrets.delete(name)) return false
              yield* backend.write(plugin, secrets)
              return true
            }),
          ),
        ),
    }),
  )

const errorDetail = (error: unknown) =>
  error instanceof Error && "code" in error ? `${String(error.code)} (${error.message.split(",")[0]})` : String(error)

/** The store in files under `<dataDir>/secrets/`. */
export const SecretStoreLive = (dataDir: string) =>
  Layer.effect(
    SecretStore,
    Effect.suspend(() => {
      const folder = join(dataDir, SECRETS_FOLDER)
      const fileOf = (plugin: string) => join(folder, `${plugin}.json`)
      const unavailable = (path: string) => (error: unknown) => new SecretStoreUnavailable({ path, detail: errorDetail(error) })
      const backend: Backend = {
        read: (plugin) =>
          Effect.flatMap(
            Effect.try({
              try: () => {
                try {
                  return readFileSync(fileOf(plugin), "utf8")
                } catch (error) {
                  if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined
                  throw error
                }
              },
              catch: unavailable(fileOf(plugin)),
            }),
            (text) => {
              if (text === undefined) return Effect.succeed(new Map<string, string>())
              // The detail names the problem's place, never the text: the file holds values.
              const decoded = decodeJsonText(SecretsFile, text, fileCaps)
              return Either.isRight(decoded)
                ? Effect.succeed(new Map(Object.entries(decoded.right.secrets)))
                : Effect.fail(new SecretStoreUnavailable({ path: fileOf(plugin), detail: "the file is not a secrets file Plinth wrote; remove it and set the secrets again" }))
            },
          ),
        write: (plugin, secrets) =>
          Effect.try({
            try: () => {
              const file = fileOf(plugin)
              ensureFolder(folder)
              if (secrets.size === 0) return rmSync(file, { force: true })
              const temporary = `${file}.${process.pid}.${Date.now()}.tmp`
              const content = { version: 1, secrets: Object.fromEntries([...secrets].sort(([a], [b]) => (a < b ? -1 : 1))) }
              try {
                writeFileSync(temporary, JSON.stringify(content, null, 2) + "\n", { mode: 0o600, flag: "wx" })
                renameSync(temporary, file)
              } finally {
                rmSync(temporary, { force: true })
              }
            },
            catch: unavailable(folder),
          }),
        plugins: Effect.try({
          try: () => {
            let entries: Array<string>
            try {
              entries = readdirSync(folder)
            } catch (error) {
              if ((error as NodeJS.ErrnoException).code === "ENOENT") return []
              throw error
            }
            return entries
              .filter((entry) => entry.endsWith(".json"))
              .map((entry) => entry.slice(0, -".json".length))
              .filter((id) => Either.isRight(validPlugin(id)))
              .sort()
          },
          catch: unavailable(folder),
        }),
      }
      return make(backend)
    }),
  )

/** Creates the folder owner-only, and makes it so if it already existed more open. */
const ensureFolder = (folder: string) => {
  mkdirSync(folder, { recursive: true, mode: 0o700 })
  chmodSync(folder, 0o700)
}

/** The store in memory, for tests and hosts that supply secrets themselves. */
export const SecretStoreMemory = (initial: Readonly<Record<string, Readonly<Record<string, string>>>> = {}) =>
  Layer.effect(
    SecretStore,
    Effect.suspend(() => {
      const files = new Map<string, Map<string, string>>(Object.entries(initial).map(([plugin, secrets]) => [plugin, new Map(Object.entries(secrets))]))
      return make({
        read: (plugin) => Effect.sync(() => new Map(files.get(plugin))),
        write: (plugin, secrets) =>
          Effect.sync(() => {
            if (secrets.size === 0) files.delete(plugin)
            else files.set(plugin, new Map(secrets))
          }),
        plugins: Effect.sync(() => [...files.keys()].sort()),
      })
    }),
  )
