import { Path } from "@effect/platform"
import { Effect } from "effect"
import { diffLocks, emptyLock, emptyOwnRecord, isUpToDate, LOCK_VERSION, lockedFiles, type LockChanges, type LockEntry, type LockFile, type PluginId } from "@plinth/domain"
import { LockStore } from "./LockStore.js"
import { readManifest } from "./Manifests.js"
import { discoverPluginFolders } from "./PluginFiles.js"
import { measureTree } from "./PluginVerifier.js"

/** The lock that pins the plugins as they are on disk now. Every manifest must decode. */
export const computeLock = (root: string) =>
  Effect.gen(function* () {
    const path = yield* Path.Path
    const folders = yield* discoverPluginFolders(root)
    const plugins = emptyOwnRecord<LockEntry>()
    for (const folder of folders) {
      const dir = path.join(root, folder)
      yield* readManifest(dir, folder)
      const { entries, digest } = yield* measureTree(dir, folder)
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
