import { Data } from "effect"

/** A command named a plugin that is not under the plugin root. */
export class PluginNotFound extends Data.TaggedError("PluginNotFound")<{
  readonly plugin: string
  readonly known: ReadonlyArray<string>
}> {
  override get message() {
    return `no plugin '${this.plugin}' under the plugin root (found: ${this.known.join(", ") || "none"})`
  }
}
