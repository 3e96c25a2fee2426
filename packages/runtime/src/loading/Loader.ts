import { Effect } from "effect"
import type { LoadReport, PluginId } from "@plinth/domain"
import { discoverAndVerify, namingLock, type LoadOptions } from "./Discovery.js"
import { readVerifiedFiles } from "./VerifiedFiles.js"
import { PluginModuleLoader } from "./PluginModuleLoader.js"
import { DuplicatePlugin, Registry, type RegisteredPlugin } from "./Registry.js"

export { discoverAndVerify, namingLock, type LoadOptions }

export const loadPlugins = (options: LoadOptions) =>
  Effect.gen(function* () {
    const registry = yield* Registry
    const loader = yield* PluginModuleLoader
    const { lock, discovered, totalWalked } = yield* discoverAndVerify(options)

    // A second load of the same id is refused before any module body runs.
    for (const plugin of discovered) {
      if (yield* registry.has(plugin.id)) return yield* new DuplicatePlugin({ plugin: plugin.id })
    }

    // Read every plugin's bytes once and check them against the lock before
    // any import: these bytes, not the files on disk now, are what runs.
    const verified = []
    for (const plugin of discovered) {
      verified.push(yield* readVerifiedFiles(plugin, lock.plugins[plugin.id as PluginId]!).pipe(Effect.mapError(namingLock(options.lock))))
    }

    // Import all, in discovery order.
    const registered: Array<RegisteredPlugin> = []
    for (const [i, plugin] of discovered.entries()) {
      const module = yield* loader.load(plugin, verified[i]!)
      registered.push({
        id: plugin.manifest.id,
        dir: plugin.dir,
        manifest: plugin.manifest,
        digest: lock.plugins[plugin.manifest.id]!.digest,
        module,
      })
    }

    // Register all or none.
    yield* registry.registerAll(registered)
    const report: LoadReport = { loaded: registered.map((p) => p.id), totalWalked }
    return report
  }).pipe(Effect.withSpan("plinth.loadPlugins"))
