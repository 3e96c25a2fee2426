import * as Path from "@effect/platform/Path"
import { Effect, Option } from "effect"
import { type Digest, type PluginId, type LockFile, type PluginManifest } from "@plinth/domain"
import { readLock } from "./loading/LockStore.js"
import { readManifest } from "./loading/Manifests.js"
import { discoverPluginFolders } from "./loading/PluginFiles.js"
import { requirePluginFolder } from "./loading/PluginNotFound.js"

/** What observation commands show of a plugin: its manifest and what the lock says, read without running any plugin code. */
export interface PluginSummary {
  readonly id: string
  readonly dir: string
  readonly manifest: PluginManifest
  readonly lockedDigest: Option.Option<Digest>
  readonly lockedFiles: number
}

const summarize = (root: string, folder: string, lock: LockFile) =>
  Effect.gen(function* () {
    const path = yield* Path.Path
    const dir = path.join(root, folder)
    const manifest = yield* readManifest(dir, folder)
    const entry = lock.plugins[folder as PluginId]
    const summary: PluginSummary = {
      id: folder,
      dir,
      manifest,
      lockedDigest: Option.fromNullable(entry?.digest),
      lockedFiles: entry === undefined ? 0 : Object.keys(entry.files).length,
    }
    return summary
  })

export const listPlugins = (options: { readonly root: string; readonly lock: string }) =>
  Effect.gen(function* () {
    const lock = yield* readLock(options)
    const folders = yield* discoverPluginFolders(options.root)
    return yield* Effect.forEach(folders, (folder) => summarize(options.root, folder, lock))
  })

export const showPlugin = (options: { readonly root: string; readonly lock: string; readonly id: string }) =>
  Effect.gen(function* () {
    const lock = yield* readLock(options)
    yield* requirePluginFolder(options.root, options.id)
    return yield* summarize(options.root, options.id, lock)
  })
