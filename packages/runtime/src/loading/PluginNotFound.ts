import { Data, Effect } from "effect"
import { discoverPluginFolders } from "./PluginFiles.js"

/** A command named a plugin that is not under the plugin root. */
export class PluginNotFound extends Data.TaggedError("PluginNotFound")<{
  readonly plugin: string
  readonly known: ReadonlyArray<string>
}> {
  override get message() {
    return `no plugin '${this.plugin}' under the plugin root (found: ${this.known.join(", ") || "none"})`
  }
}

/** Fails with PluginNotFound unless `id` is one of the plugin folders under root (so `../x` never is). */
export const requirePluginFolder = (root: string, id: string) =>
  Effect.flatMap(discoverPluginFolders(root), (folders) =>
    folders.includes(id) ? Effect.void : Effect.fail(new PluginNotFound({ plugin: id, known: folders })),
  )
