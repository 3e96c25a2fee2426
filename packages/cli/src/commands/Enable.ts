import { Args, Command } from "@effect/cli"
import { Effect, Option } from "effect"
import { ConfigStore, databasePath } from "@plinth/runtime"
import * as Common from "../CommonOptions.js"
import { formatOf, report, reportFailures } from "../Output.js"
import { printable } from "../Render.js"
import { storesIn, verifiedPlugin } from "./PluginState.js"

const id = Args.text({ name: "id" }).pipe(Args.withDescription("The plugin id (its folder name)."))

interface EnabledChange {
  readonly plugin: string
  readonly enabled: boolean
  /** False when it already was in that state. */
  readonly changed: boolean
  readonly database: string
}

/**
 * `plinth plugins enable|disable <id>`: sets the enabled flag of the plugin's
 * default instance in the ConfigStore. `invoke` and every PluginManager over
 * the same data directory read it; a disabled plugin refuses calls with
 * PluginDisabled. Runs no plugin code: onEnable/onDisable hooks run in a
 * manager's worker, not here.
 */
const setEnabled = (name: "enable" | "disable", enabled: boolean, description: string) =>
  Command.make(name, { id, root: Common.root, lock: Common.lock, dataDir: Common.dataDir, json: Common.json }, (options) => {
    const format = formatOf(options)
    // Verified first: nothing, not even the database, is created for a plugin that would not run.
    return Effect.zipRight(
      verifiedPlugin(options.root, options.lock, options.id),
      Effect.gen(function* () {
        const store = yield* ConfigStore
        const before = yield* store.get(options.id)
        const was = Option.match(before, { onNone: () => true, onSome: (record) => record.enabled })
        if (was !== enabled) yield* store.setEnabled(options.id, enabled)
        yield* report(
          format,
          { plugin: options.id, enabled, changed: was !== enabled, database: databasePath({ dataDir: options.dataDir }) } satisfies EnabledChange,
          (r, palette) =>
            r.changed
              ? `${palette.ok(r.enabled ? "enabled" : "disabled")} '${printable(r.plugin)}' (recorded in ${printable(r.database)})`
              : `'${printable(r.plugin)}' was already ${r.enabled ? "enabled" : "disabled"}; nothing changed`,
          (r) => ({ ok: true, plugin: r.plugin, enabled: r.enabled, changed: r.changed }),
        )
      }).pipe(Effect.provide(storesIn(options.dataDir))),
    ).pipe(reportFailures(format))
  }).pipe(Command.withDescription(description))

export const enable = setEnabled("enable", true, "Enable a plugin: invoke and the PluginManager run it again. Runs no plugin code.")
export const disable = setEnabled(
  "disable",
  false,
  "Disable a plugin: invoke (without --force) and the PluginManager refuse its calls with PluginDisabled. Runs no plugin code.",
)
