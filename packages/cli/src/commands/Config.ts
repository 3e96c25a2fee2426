import { Args, Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import { unknownConfigKeys } from "@plinth/domain"
import { checkHostConfig, ConfigStore, databasePath, type PluginConfigRecord } from "@plinth/runtime"
import type { Palette } from "../Colour.js"
import * as Common from "../CommonOptions.js"
import { UsageError } from "../Failures.js"
import { parseJsonOption } from "../OperationInput.js"
import { formatOf, report, reportFailures } from "../Output.js"
import { printable } from "../Render.js"
import { databaseExists, storesIn, verifiedPlugin } from "./PluginState.js"

const id = Args.text({ name: "id" }).pipe(Args.withDescription("The plugin id (its folder name)."))

// Help for these options is written in Docs.ts.
const set = Options.text("set").pipe(Options.withPseudoName("json"), Options.optional)
const lenient = Options.boolean("lenient")

interface ConfigView {
  readonly plugin: string
  readonly config: Readonly<Record<string, unknown>>
  readonly enabled: boolean
  /** Whether the database holds a record for the plugin (without one: `{}`, enabled). */
  readonly stored: boolean
  /** Whether this run wrote the config. */
  readonly updated: boolean
  /** Unknown keys `--lenient` dropped. */
  readonly dropped: ReadonlyArray<string>
  readonly database: string
}

const renderView = (view: ConfigView, palette: Palette) =>
  [
    view.updated
      ? `${palette.ok("stored")} the config of '${printable(view.plugin)}' in ${printable(view.database)}`
      : `${printable(view.plugin)}${view.stored ? "" : palette.dim("  (nothing stored: the defaults apply)")}`,
    ...(view.dropped.length > 0 ? [`dropped unknown ${view.dropped.length === 1 ? "key" : "keys"}: ${view.dropped.map(printable).join(", ")}`] : []),
    `enabled: ${view.enabled ? "yes" : palette.bad("no")}`,
    `config:  ${printable(JSON.stringify(view.config))}`,
  ].join("\n")

/**
 * `plinth plugins config <id> [--set JSON] [--lenient]`: shows, or replaces,
 * the persisted config of the plugin's default instance. A new config is
 * checked on the host against the manifest's config JSON Schema, exactly as
 * the PluginManager checks a load: strict refuses unknown keys
 * (ConfigInvalid, exit 5), `--lenient` drops them. Runs no plugin code.
 */
export const config = Command.make(
  "config",
  { id, set, lenient, root: Common.root, lock: Common.lock, dataDir: Common.dataDir, json: Common.json },
  (options) => {
    const format = formatOf(options)
    return Effect.gen(function* () {
      if (options.lenient && Option.isNone(options.set)) {
        return yield* new UsageError({ message: "--lenient applies to a config given with --set", command: "plinth plugins config" })
      }
      const given = Option.isSome(options.set) ? Option.some(yield* parseJsonOption("--set", options.set.value)) : Option.none()
      const plugin = yield* verifiedPlugin(options.root, options.lock, options.id)
      const checked = Option.isSome(given) ? Option.some(yield* checkHostConfig(plugin.id, plugin.manifest, given.value, !options.lenient)) : Option.none()
      const dropped = Option.isSome(given) ? unknownConfigKeys(plugin.manifest.config, given.value as Readonly<Record<string, unknown>>) : []
      // Opened only once the plugin and the config are known good: a refused change creates nothing, nor does showing.
      const record =
        Option.isNone(checked) && !databaseExists(options.dataDir)
          ? Option.none<PluginConfigRecord>()
          : yield* Effect.gen(function* () {
              const store = yield* ConfigStore
              if (Option.isSome(checked)) yield* store.set(plugin.id, checked.value)
              return yield* store.get(plugin.id)
            }).pipe(Effect.provide(storesIn(options.dataDir)))
      const view: ConfigView = {
        plugin: plugin.id,
        config: Option.match(record, { onNone: () => ({}), onSome: (r) => r.config }),
        enabled: Option.match(record, { onNone: () => true, onSome: (r) => r.enabled }),
        stored: Option.isSome(record),
        updated: Option.isSome(given),
        dropped,
        database: databasePath({ dataDir: options.dataDir }),
      }
      yield* report(format, view, renderView, (v) => ({
        ok: true,
        plugin: v.plugin,
        config: v.config,
        enabled: v.enabled,
        stored: v.stored,
        updated: v.updated,
        ...(v.dropped.length > 0 ? { dropped: v.dropped } : {}),
      }))
    }).pipe(reportFailures(format))
  },
).pipe(
  Command.withDescription(
    "Show the persisted config of a plugin, or replace it with --set, checked against the manifest's config schema. Runs no plugin code.",
  ),
)
