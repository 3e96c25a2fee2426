import { closeSync, fstatSync, openSync, readFileSync } from "node:fs"
import { Effect } from "effect"
import { diffFileMaps, IntegrityMismatch, SchemaViolation, type LockEntry, type TreeEntry } from "@plinth/domain"
import { Hashing } from "../hashing/Hashing.js"
import { PluginFiles } from "../loading/PluginFiles.js"
import type { VerifiedFile } from "../wire/Protocol.js"

/**
 * A worker's plugin is held in memory, in the host and in the worker; past this
 * many bytes it is refused before it is read, rather than exhausting memory.
 */
export const MAX_WORKER_PLUGIN_BYTES = 256 * 1024 * 1024

class TooLarge {
  constructor(readonly detail: string) {}
}

/**
 * Reads a plugin's files into memory once and checks those very bytes against
 * the lock (each file's SHA-256 and the tree digest). The worker runs these
 * bytes and never opens the files itself, so a file swapped after this check
 * cannot run.
 */
export const readVerifiedFiles = (
  plugin: { readonly id: string; readonly dir: string },
  locked: LockEntry,
  maxBytes: number = MAX_WORKER_PLUGIN_BYTES,
) =>
  Effect.gen(function* () {
    const files = yield* PluginFiles
    const hashing = yield* Hashing
    const walked = yield* files.walk(plugin.dir, plugin.id)
    const contents = yield* Effect.try({
      try: () => {
        let total = 0
        return walked.map((file): VerifiedFile => {
          const fd = openSync(file.absolutePath, "r")
          try {
            total += fstatSync(fd).size
            if (total > maxBytes) throw new TooLarge(`the plugin is larger than ${maxBytes} bytes, the most a worker loads into memory`)
            return { path: file.path, bytes: readFileSync(fd) }
          } finally {
            closeSync(fd)
          }
        })
      },
      catch: (error) =>
        new SchemaViolation({
          plugin: plugin.id,
          detail: error instanceof TooLarge ? error.detail : `a file cannot be read (${String(error)})`,
        }),
    })
    const entries: Array<TreeEntry> = contents.map((file) => ({ path: file.path, sha256: hashing.sha256Hex(file.bytes) }))
    const digest = hashing.treeDigest(entries)
    const actual = Object.fromEntries(entries.map((e) => [e.path, e.sha256]))
    const diff = diffFileMaps(locked.files, actual)
    if (digest !== locked.digest || diff.added.length + diff.removed.length + diff.changed.length > 0) {
      return yield* new IntegrityMismatch({ plugin: plugin.id, expected: locked.digest, actual: digest, ...diff })
    }
    return contents
  })
