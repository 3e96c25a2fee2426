import { closeSync, constants, fstatSync, openSync, readFileSync } from "node:fs"
import { Effect } from "effect"
import { SchemaViolation, type LockEntry } from "@plinth/domain"
import { PluginFiles } from "./PluginFiles.js"
import { PluginVerifier } from "./PluginVerifier.js"
import type { VerifiedFile } from "../wire/Protocol.js"

/**
 * A worker's plugin is held in memory, in the host and in the worker; past this
 * many bytes it is refused before it is read, rather than exhausting memory.
 */
export const MAX_WORKER_PLUGIN_BYTES = 256 * 1024 * 1024

/** A refusal found while reading, with its one-line detail. */
class Refused {
  constructor(readonly detail: string) {}
}

/**
 * Reads a plugin's files into memory once and has the `PluginVerifier` check
 * those very bytes against the lock entry. Whoever runs the plugin (a worker,
 * an in-process loader) runs these bytes and never opens the files itself, so
 * a file swapped after this check cannot run, and a substituted verifier (a
 * signature check, say) guards every start as it guards every load.
 */
export const readVerifiedFiles = (
  plugin: { readonly id: string; readonly dir: string },
  locked: LockEntry,
  maxBytes: number = MAX_WORKER_PLUGIN_BYTES,
) =>
  Effect.gen(function* () {
    const files = yield* PluginFiles
    const verifier = yield* PluginVerifier
    const walked = yield* files.walk(plugin.dir, plugin.id)
    const contents = yield* Effect.try({
      try: () => {
        let total = 0
        return walked.map((file): VerifiedFile => {
          // Non-blocking, and checked through the descriptor: a FIFO or device swapped in after the walk is refused, never waited on.
          const fd = openSync(file.absolutePath, constants.O_RDONLY | constants.O_NONBLOCK)
          try {
            const info = fstatSync(fd)
            if (!info.isFile()) throw new Refused(`'${file.path}' is no longer a regular file`)
            total += info.size
            if (total > maxBytes) throw new Refused(`the plugin is larger than ${maxBytes} bytes, the most a worker loads into memory`)
            return { path: file.path, bytes: readFileSync(fd) }
          } finally {
            closeSync(fd)
          }
        })
      },
      catch: (error) =>
        new SchemaViolation({
          plugin: plugin.id,
          detail: error instanceof Refused ? error.detail : `a file cannot be read (${String(error)})`,
        }),
    })
    yield* verifier.verifyFiles(plugin, contents, locked)
    return contents
  })
