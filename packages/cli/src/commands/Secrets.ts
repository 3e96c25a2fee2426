import { Args, Command, Prompt } from "@effect/cli"
import { Effect, Either, Option, Redacted } from "effect"
import { isRequiredSecret, SecretName, type SecretDeclaration } from "@plinth/domain"
import { readManifest, SecretStore, SecretStoreLive, type SecretStoreError, type SecretStoreUnavailable } from "@plinth/runtime"
import { join } from "node:path"
import { readdirSync, statSync } from "node:fs"
import { Schema } from "effect"
import type { Palette } from "../Colour.js"
import * as Common from "../CommonOptions.js"
import { UsageError } from "../Failures.js"
import { formatOf, report, reportFailures } from "../Output.js"
import { printable } from "../Render.js"
import { group } from "./Group.js"

/*
 * `plinth secrets …`: the secret store under the data directory (ADR 0026).
 * A value is read from stdin, or from a prompt that does not echo when stdin
 * is a terminal: never from the command line, where `ps` and shell history
 * would keep it. Nothing here ever prints a value; `list` prints names.
 */

const plugin = Args.text({ name: "plugin" }).pipe(Args.withDescription("The plugin id the secret belongs to."))
const name = Args.text({ name: "name" }).pipe(Args.withDescription("The secret's name, as the plugin's manifest declares it."))

/** The largest value `set` accepts, in bytes. */
export const MAX_SECRET_BYTES = 64 * 1024

/** A bad plugin id or name is a mistake on the command line (exit 2); a store that cannot be used is not. */
const onCommandLine =
  (command: string) =>
  <A, R>(effect: Effect.Effect<A, SecretStoreError, R>): Effect.Effect<A, UsageError | SecretStoreUnavailable, R> =>
    Effect.mapError(effect, (error) =>
      error._tag === "SecretNameInvalid" ? new UsageError({ message: error.message, command: `plinth secrets ${command}` }) : error,
    )

/** The value on stdin, without one trailing line break (`echo "$TOKEN" | plinth secrets set …`). */
const readStdin = (command: string) =>
  Effect.tryPromise({
    try: async () => {
      const chunks: Array<Buffer> = []
      let size = 0
      for await (const chunk of process.stdin) {
        const buffer = typeof chunk === "string" ? Buffer.from(chunk) : Buffer.from(chunk as Uint8Array)
        size += buffer.length
        if (size > MAX_SECRET_BYTES) throw new Error(`the value on stdin is longer than ${MAX_SECRET_BYTES / 1024} KiB`)
        chunks.push(buffer)
      }
      return Buffer.concat(chunks).toString("utf-8").replace(/\r?\n$/, "")
    },
    // The message is Plinth's own or the stream's: neither holds what was read.
    catch: (error) => new UsageError({ message: error instanceof Error ? error.message : "stdin cannot be read", command: `plinth secrets ${command}` }),
  })

const readValue = (pluginId: string, secretName: string, format: "human" | "json") =>
  Effect.gen(function* () {
    if (process.stdin.isTTY === true) {
      // The prompt is drawn on stdout, which under --json holds exactly one JSON object.
      if (format === "json") {
        return yield* new UsageError({ message: "with --json, give the value on stdin (a pipe or a file), not at a prompt", command: "plinth secrets set" })
      }
      return yield* Prompt.hidden({ message: `Value of ${secretName} for '${pluginId}' (not echoed): ` }).pipe(
        Effect.map(Redacted.value),
        Effect.catchAll(() => Effect.fail(new UsageError({ message: "no value was entered", command: "plinth secrets set" }))),
      )
    }
    return yield* readStdin("set")
  }).pipe(
    Effect.filterOrFail(
      (value) => value.length > 0,
      () => new UsageError({ message: "the value is empty: pipe it on stdin, e.g. 'printf %s \"$TOKEN\" | plinth secrets set …'", command: "plinth secrets set" }),
    ),
    Effect.map((value) => Redacted.make(value)),
  )

/** `plinth secrets set <plugin> <NAME>`: sets one secret from stdin (or a no-echo prompt). */
export const set = Command.make("set", { plugin, name, dataDir: Common.dataDir, json: Common.json }, (options) => {
  const format = formatOf(options)
  return Effect.gen(function* () {
    const store = yield* SecretStore
    // Names are checked before a value is asked for.
    yield* onCommandLine("set")(store.list(options.plugin))
    if (Either.isLeft(Schema.decodeUnknownEither(SecretName)(options.name))) {
      return yield* new UsageError({
        message: `'${options.name}' is not a valid secret name: an upper-case letter, then up to 63 upper-case letters, digits or '_'`,
        command: "plinth secrets set",
      })
    }
    const value = yield* readValue(options.plugin, options.name, format)
    yield* onCommandLine("set")(store.set(options.plugin, options.name, value))
    yield* report(
      format,
      { plugin: options.plugin, name: options.name },
      (r, palette) => `${palette.ok("set")} secret ${r.name} of '${r.plugin}' in ${printable(join(options.dataDir, "secrets"))}`,
      (r) => ({ ok: true, plugin: r.plugin, name: r.name, set: true }),
    )
  }).pipe(Effect.provide(SecretStoreLive(options.dataDir)), reportFailures(format))
}).pipe(Command.withDescription("Set a plugin's secret; the value is read from stdin, or from a prompt that does not echo."))

/** `plinth secrets rm <plugin> <NAME>`: removes one secret (a plugin's last one removes its file). */
export const rm = Command.make("rm", { plugin, name, dataDir: Common.dataDir, json: Common.json }, (options) => {
  const format = formatOf(options)
  return Effect.gen(function* () {
    const store = yield* SecretStore
    const removed = yield* onCommandLine("rm")(store.remove(options.plugin, options.name))
    yield* report(
      format,
      { plugin: options.plugin, name: options.name, removed },
      (r, palette) => (r.removed ? `${palette.ok("removed")} secret ${r.name} of '${r.plugin}'` : `secret ${r.name} of '${r.plugin}' was not set; nothing removed`),
      (r) => ({ ok: true, ...r }),
    )
  }).pipe(Effect.provide(SecretStoreLive(options.dataDir)), reportFailures(format))
}).pipe(Command.withDescription("Remove a plugin's secret."))

/** One secret as `list` shows it: never a value. */
export interface SecretStatus {
  readonly name: string
  readonly set: boolean
  /** Whether the plugin's manifest declares it; unknown (absent) when the manifest could not be read. */
  readonly declared?: boolean
  readonly required?: boolean
  readonly description?: string
}

export interface PluginSecretsStatus {
  readonly plugin: string
  readonly secrets: ReadonlyArray<SecretStatus>
  /** Declared as required and not set: the plugin will not start. */
  readonly missing: ReadonlyArray<string>
  /** Whether the plugin's manifest was found and read (under --root). */
  readonly manifest: boolean
}

/** The manifest's declarations of a plugin under `root`, or none when there is no readable manifest. */
const declarationsOf = (root: string, id: string) =>
  Effect.option(Effect.map(readManifest(join(root, id), id), (manifest) => manifest.secrets ?? []))

const folderNames = (root: string): ReadonlyArray<string> => {
  try {
    return readdirSync(root).filter((entry) => {
      try {
        return statSync(join(root, entry)).isDirectory()
      } catch {
        return false
      }
    })
  } catch {
    return []
  }
}

const statusOf = (plugin: string, stored: ReadonlyArray<string>, declared: Option.Option<ReadonlyArray<SecretDeclaration>>): PluginSecretsStatus => {
  const secrets: Array<SecretStatus> = []
  const declarations = Option.getOrElse(declared, () => [])
  for (const declaration of declarations) {
    secrets.push({
      name: declaration.name,
      set: stored.includes(declaration.name),
      declared: true,
      required: isRequiredSecret(declaration),
      ...(declaration.description !== undefined ? { description: declaration.description } : {}),
    })
  }
  for (const name of stored) {
    if (!declarations.some((d) => d.name === name)) secrets.push({ name, set: true, ...(Option.isSome(declared) ? { declared: false } : {}) })
  }
  return {
    plugin,
    secrets,
    missing: secrets.filter((s) => s.required === true && !s.set).map((s) => s.name),
    manifest: Option.isSome(declared),
  }
}

const renderStatus = (plugins: ReadonlyArray<PluginSecretsStatus>, palette: Palette): string => {
  if (plugins.length === 0) return "no secrets are set or declared"
  const lines: Array<string> = []
  for (const p of plugins) {
    lines.push(`${palette.strong(p.plugin)}${p.missing.length > 0 ? `  ${palette.bad(`missing: ${p.missing.join(", ")}`)}` : ""}${p.manifest ? "" : palette.dim("  (no manifest under --root)")}`)
    if (p.secrets.length === 0) lines.push(palette.dim("  no secrets"))
    for (const s of p.secrets) {
      const state = s.set ? palette.ok("set") : s.required === true ? palette.bad("missing") : palette.dim("not set")
      const kind = s.declared === false ? "not declared" : s.required === true ? "required" : s.required === false ? "optional" : ""
      lines.push(`  ${s.name.padEnd(24)} ${state.padEnd(7)} ${kind}${s.description !== undefined ? `  ${printable(s.description)}` : ""}`.trimEnd())
    }
  }
  return lines.join("\n")
}

/** `plinth secrets list [<plugin>]`: names, whether each is set, and which declared ones are missing; never values. */
export const list = Command.make(
  "list",
  { plugin: plugin.pipe(Args.optional), dataDir: Common.dataDir, pluginRoot: Common.root, json: Common.json },
  (options) => {
    const format = formatOf(options)
    return Effect.gen(function* () {
      const store = yield* SecretStore
      const only = Option.getOrUndefined(options.plugin)
      const stored = yield* onCommandLine("list")(store.list(only))
      const ids =
        only !== undefined
          ? [only]
          : [...new Set([...stored.map((s) => s.plugin), ...folderNames(options.pluginRoot)])].sort()
      const plugins: Array<PluginSecretsStatus> = []
      for (const id of ids) {
        const status = statusOf(id, stored.find((s) => s.plugin === id)?.names ?? [], yield* declarationsOf(options.pluginRoot, id))
        // Listing everything, a plugin that neither declares nor holds a secret is left out.
        if (only !== undefined || status.secrets.length > 0) plugins.push(status)
      }
      yield* report(format, plugins, renderStatus, (value) => ({ ok: true, plugins: value }))
    }).pipe(Effect.provide(SecretStoreLive(options.dataDir)), reportFailures(format))
  },
).pipe(Command.withDescription("List secret names per plugin, whether each is set, and the declared ones that are missing. Never prints values."))

/** `plinth secrets …`. */
export const secrets = group({
  parents: ["plinth"],
  name: "secrets",
  description: "Set, list and remove the secrets plugins declare; values are never printed.",
  subcommands: [set, list, rm],
})

/**
 * The parser quotes a word it did not expect (`Received unknown argument:
 * 'the-value'`): under `plinth secrets`, that word may be a value someone
 * tried to pass on the command line, so the message says what to do without
 * repeating it.
 */
export const secretsUsageMessage = (path: ReadonlyArray<string>, message: string): string =>
  path[0] === "plinth" && path[1] === "secrets" && /unknown argument|has no option|takes '/.test(message)
    ? `'${path.join(" ")}' takes only the plugin and the secret's NAME; the value is read from stdin or a prompt, never from the command line`
    : message
