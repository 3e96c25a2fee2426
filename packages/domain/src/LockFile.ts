import { Schema } from "effect"
import type { Either } from "effect"
import { Digest, PluginId, Sha256Hex } from "./Ids.js"
import { relativePathProblem } from "./PluginPath.js"
import { decodeJsonText } from "./JsonText.js"
import { emptyOwnRecord, OwnRecord } from "./OwnRecord.js"
import { compareBytewise } from "./PluginPath.js"

const LockedPath = Schema.String.pipe(Schema.filter((path) => relativePathProblem(path) ?? true)).annotations({
  description: "a '/'-separated path inside the plugin folder",
})

/** What the lock pins for one plugin: its tree digest and each file's SHA-256 (to explain a mismatch). */
export const LockEntry = Schema.Struct({
  digest: Digest,
  files: OwnRecord({ key: LockedPath, value: Sha256Hex }),
})
export type LockEntry = typeof LockEntry.Type

export const LOCK_VERSION = 1 as const

export const LockFile = Schema.Struct({
  lockVersion: Schema.Literal(LOCK_VERSION).annotations({ description: `${LOCK_VERSION} (the lock format this version of plinth reads)` }),
  plugins: OwnRecord({ key: PluginId, value: LockEntry }),
}).annotations({ identifier: "LockFile", parseOptions: { onExcessProperty: "error" } })
export type LockFile = typeof LockFile.Type

export const emptyLock: LockFile = { lockVersion: LOCK_VERSION, plugins: emptyOwnRecord() }

/** 16 MiB: thousands of plugins with thousands of files each, far from any real lock. */
export const lockCaps = { maxChars: 16 * 1024 * 1024, maxDepth: 8 } as const

/** Decodes `PLUGINS.lock` text; never throws. */
export const decodeLockFile = (text: string): Either.Either<LockFile, string> => decodeJsonText(LockFile, text, lockCaps)

/**
 * Canonical lock text: keys sorted bytewise at every level, two-space indent,
 * trailing newline, so that re-locking an unchanged tree changes no byte.
 */
export const encodeLockFile = (lock: LockFile): string => {
  const sortedKeys = <V>(record: Readonly<Record<string, V>>) => Object.keys(record).sort(compareBytewise)
  // Prototype-free objects, so that a file or plugin named `__proto__` is written like any other.
  const plugins = emptyOwnRecord<unknown>()
  for (const id of sortedKeys(lock.plugins)) {
    const entry = lock.plugins[id as PluginId]!
    const files = emptyOwnRecord<string>()
    for (const path of sortedKeys(entry.files)) files[path] = entry.files[path]!
    plugins[id] = { digest: entry.digest, files }
  }
  return JSON.stringify({ lockVersion: lock.lockVersion, plugins }, null, 2) + "\n"
}

/** What re-locking changes, plugin by plugin. */
export interface LockChanges {
  readonly added: ReadonlyArray<PluginId>
  readonly removed: ReadonlyArray<PluginId>
  readonly changed: ReadonlyArray<PluginId>
}

export const diffLocks = (before: LockFile, after: LockFile): LockChanges => {
  const ids = (l: LockFile) => Object.keys(l.plugins) as Array<PluginId>
  const sort = (xs: Array<PluginId>) => xs.sort(compareBytewise)
  return {
    added: sort(ids(after).filter((id) => !Object.hasOwn(before.plugins, id))),
    removed: sort(ids(before).filter((id) => !Object.hasOwn(after.plugins, id))),
    changed: sort(
      ids(after).filter((id) => Object.hasOwn(before.plugins, id) && before.plugins[id]!.digest !== after.plugins[id]!.digest),
    ),
  }
}

export const isUpToDate = (changes: LockChanges): boolean =>
  changes.added.length + changes.removed.length + changes.changed.length === 0

