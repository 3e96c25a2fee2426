import { Command } from "@effect/cli"
import { Effect } from "effect"
import { listPlugins } from "@plinth/runtime"
import * as Common from "../CommonOptions.js"
import { formatOf, report, reportFailures } from "../Output.js"
import { pluginListJson, renderPluginList } from "../Render.js"

/** `plinth plugins list`: reads manifests and the lock only; runs no plugin code. */
export const list = Command.make("list", { root: Common.root, lock: Common.lock, json: Common.json }, (options) => {
  const format = formatOf(options)
  return Effect.flatMap(listPlugins({ root: options.root, lock: options.lock }), (plugins) =>
    report(format, plugins, renderPluginList, pluginListJson),
  ).pipe(reportFailures(format))
}).pipe(Command.withDescription("List the plugins with their versions and lock status. Runs no plugin code."))
