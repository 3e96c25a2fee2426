import { pathToFileURL } from "node:url"
import { join } from "node:path"
import { Context, Effect, Layer } from "effect"
import { PluginImportError } from "@plinth/domain"
import type { DiscoveredPlugin } from "./PluginVerifier.js"

/** Brings a verified plugin's code to life and hands back its module namespace. */
export class PluginModuleLoader extends Context.Tag("@plinth/runtime/PluginModuleLoader")<
  PluginModuleLoader,
  { readonly load: (plugin: DiscoveredPlugin) => Effect.Effect<unknown, PluginImportError> }
>() {}

const describe = (cause: unknown) => (cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause))

/**
 * Dynamic import in the host process, for hosts that trust their plugins once
 * verified. It reads the files again from disk, so it does not close the window
 * between verification and import; worker processes do (they run the verified bytes).
 */
export const InProcessModuleLoaderLive = Layer.succeed(PluginModuleLoader, {
  load: (plugin) =>
    Effect.tryPromise({
      try: () => import(pathToFileURL(join(plugin.dir, plugin.manifest.entry)).href) as Promise<unknown>,
      catch: (cause) => new PluginImportError({ plugin: plugin.id, detail: describe(cause) }),
    }).pipe(Effect.withSpan("plinth.import", { attributes: { plugin: plugin.id } })),
})
