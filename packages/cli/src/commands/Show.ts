import { Args, Command } from "@effect/cli"
import { Effect } from "effect"
import { showPlugin } from "@plinth/runtime"
import * as Common from "../CommonOptions.js"
import { formatOf, report, reportFailures } from "../Output.js"
import { pluginDetailJson, renderPluginDetail } from "../Render.js"

const id = Args.text({ name: "id" }).pipe(Args.withDescription("The plugin id (its folder name)."))

/** `plinth plugins show <id>`: the manifest, declared actions and config schema, and lock status; runs no plugin code. */
export const show = Command.make("show", { id, root: Common.root, lock: Common.lock, json: Common.json }, (options) => {
  const format = formatOf(options)
  return Effect.flatMap(showPlugin({ root: options.root, lock: options.lock, id: options.id }), (plugin) =>
    report(format, plugin, renderPluginDetail, pluginDetailJson),
  ).pipe(reportFailures(format))
}).pipe(
  Command.withDescription("Show a plugin's manifest, declared actions, config schema and lock status. Runs no plugin code."),
)
