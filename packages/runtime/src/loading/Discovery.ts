import * as Path from "@effect/platform/Path"
import { Effect } from "effect"
import { IntegrityMismatch, MissingPluginDirectory, UnlockedPlugin, type LockFile, type PluginId } from "@plinth/domain"
import { HashingProgress } from "../hashing/HashingProgress.js"
import { readLock } from "./LockStore.js"
import { readManifest } from "./Manifests.js"
import { discoverPluginFolders } from "./PluginFiles.js"
import { PluginVerifier, type DiscoveredPlugin } from "./PluginVerifier.js"

// Apart from loading (Loader.ts), so that verifying alone loads none of what importing plugins needs (ADR 0018).

export interface LoadOptions {
  /** The folder holding one sub-folder per plugin. */
  readonly root: string
  /** The `PLUGINS.lock` to verify against. */
  readonly lock: string
}

/**
 * Discover → Verify all → Import all → Register.
 *
 * Nothing is imported until every plugin has passed every check, so a
 * tampered plugin anywhere means no plugin module body runs and the registry
 * is unchanged. Checks run cheapest first and fail fast.
 */
export const discoverAndVerify = (options: LoadOptions) =>
  Effect.gen(function* () {
    const path = yield* Path.Path
    const verifier = yield* PluginVerifier
    const lock: LockFile = yield* readLock(options)

    // Discover.
    const folders = yield* discoverPluginFolders(options.root)

    // Verify all: manifests, lock membership, lock coverage, then digests.
    const discovered: Array<DiscoveredPlugin> = []
    for (const folder of folders) {
      const dir = path.join(options.root, folder)
      const manifest = yield* readManifest(dir, folder)
      discovered.push({ id: folder, dir, manifest })
    }
    for (const plugin of discovered) {
      if (!Object.hasOwn(lock.plugins, plugin.id)) return yield* new UnlockedPlugin({ plugin: plugin.id, lock: options.lock })
    }
    const found = new Set(folders)
    for (const locked of Object.keys(lock.plugins)) {
      if (!found.has(locked)) return yield* new MissingPluginDirectory({ plugin: locked, lock: options.lock })
    }
    // The lock says how many files verification will hash: progress shows that total from the start.
    const progress = yield* HashingProgress
    progress.planned(discovered.reduce((sum, plugin) => sum + Object.keys(lock.plugins[plugin.id as PluginId]!.files).length, 0))
    for (const plugin of discovered) {
      yield* verifier.verify(plugin, lock.plugins[plugin.id as PluginId]!).pipe(Effect.mapError(namingLock(options.lock)))
    }
    return { lock, discovered, totalWalked: folders.length }
  }).pipe(Effect.withSpan("plinth.verify", { attributes: { "plinth.root": options.root } }))

/** A mismatch names the lock file it was checked against (the verifier seam knows only the entry). */
export const namingLock =
  (lock: string) =>
  <E>(error: E): E =>
    error instanceof IntegrityMismatch && error.lock === undefined
      ? (new IntegrityMismatch({
          plugin: error.plugin,
          expected: error.expected,
          actual: error.actual,
          added: error.added,
          removed: error.removed,
          changed: error.changed,
          lock,
        }) as E)
      : error
