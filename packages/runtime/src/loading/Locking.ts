import * as Path from "@effect/platform/Path"
import { Effect } from "effect"
import { diffLocks, emptyLock, emptyOwnRecord, isUpToDate, LOCK_VERSION, lockedFiles, type LockChanges, type LockEntry, type LockFile, type PluginId } from "@plinth/domain"
import { HashingProgress } from "../hashing/HashingProgress.js"
import { LockStore } from "./LockStore.js"
import { readManifest } from "./Manifests.js"
import { discoverPluginFolders, PluginFiles, type PluginFile } from "./PluginFiles.js"
import { hashPluginTree } from "./PluginVerifier.js"

/**
 * The lock that pins the plugins as they are on disk now. Every manifest must
 * decode. Every folder is walked before any is hashed, so progress knows the
 * total from the start.
 */
export const computeLock = (root: string) =>
  Effect.gen(function* () {
    const path = yield* Path.Path
    const pluginFiles = yield* PluginFiles
    const folders = yield* discoverPluginFolders(root)
    const walked: Array<{ readonly folder: string; readonly files: ReadonlyArray<PluginFile> }> = []
    for (const folder of folders) {
      const dir = path.join(root, folder)
      yield* readManifest(dir, folder)
      walked.push({ folder, files: yield* pluginFiles.walk(dir, folder) })
    }
    const progress = yield* HashingProgress
    progress.planned(walked.reduce((sum, w) => sum + w.files.length, 0))
    const plugins = emptyOwnRecord<LockEntry>()
    for (const { folder, files } of walked) {
      const { entries, digest } = yield* hashPluginTree(folder, files)
      plugins[folder] = { digest, files: lockedFiles(entries) }
    }
    const lock: LockFile = { lockVersion: LOCK_VERSION, plugins: plugins as Record<PluginId, LockEntry> }
    return lock
  })

export interface LockOutcome {
  /** Whether a lock file existed before this run; with `check` and no lock, there is nothing to compare with. */
  readonly lockFound: boolean
  readonly changes: LockChanges
  readonly upToDate: boolean
  readonly written: boolean
}

/**
 * Re-pins the plugins after review. With `check`, writes nothing and only
 * reports whether the lock on disk is current. A missing lock counts as empty.
 */
export const lockPlugins = (options: { readonly root: string; readonly lock: string; readonly check: boolean }) =>
  Effect.gen(function* () {
    const store = yield* LockStore
    const found = yield* store.read(options.lock).pipe(
      Effect.map((lock) => ({ exists: true, lock })),
      Effect.catchTag("LockFileMissing", () => Effect.succeed({ exists: false, lock: emptyLock })),
    )
    const { exists, lock: before } = found
    const after = yield* computeLock(options.root)
    const changes = diffLocks(before, after)
    const upToDate = isUpToDate(changes) && exists
    const written = !options.check && !upToDate
    if (written) yield* store.write(options.lock, after)
    const outcome: LockOutcome = { lockFound: exists, changes, upToDate, written }
    return outcome
  })
