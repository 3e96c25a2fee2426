import { Context, Effect, Layer } from "effect"
import { PluginImportError } from "@plinth/domain"
import type { DiscoveredPlugin, InMemoryFile } from "./PluginVerifier.js"
import { importVerified } from "./VerifiedImport.js"

/** One file of a plugin as read once and checked against the lock (`readVerifiedFiles`). */
export type VerifiedPluginFile = InMemoryFile

/** Brings a verified plugin's code to life and hands back its module namespace. */
export class PluginModuleLoader extends Context.Tag("@plinth/runtime/PluginModuleLoader")<
  PluginModuleLoader,
  {
    /** `files` are the plugin's bytes as checked against the lock: the loader runs these, not what is on disk now. */
    readonly load: (plugin: DiscoveredPlugin, files: ReadonlyArray<VerifiedPluginFile>) => Effect.Effect<unknown, PluginImportError>
  }
>() {}

const describe = (cause: unknown) => (cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause))

/**
 * Import in the host process, for hosts that trust their plugins once
 * verified. Every module of the plugin (its own files and its own
 * node_modules) comes from the verified bytes through module hooks, so a file
 * swapped on disk after verification never runs (ADR 14).
 */
export const InProcessModuleLoaderLive = Layer.succeed(PluginModuleLoader, {
  load: (plugin, files) =>
    Effect.tryPromise({
      try: () => importVerified({ plugin: plugin.id, dir: plugin.dir, entry: plugin.manifest.entry, files }),
      catch: (cause) => new PluginImportError({ plugin: plugin.id, detail: describe(cause) }),
    }).pipe(Effect.withSpan("plinth.import", { attributes: { plugin: plugin.id } })),
})
