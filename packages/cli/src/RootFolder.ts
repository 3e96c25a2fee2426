import { statSync } from "node:fs"
import { Effect } from "effect"
import type { UserOutput } from "./Colour.js"
import { DEFAULT_ROOT } from "./Defaults.js"
import { UsageError } from "./Failures.js"
import { reportFailures } from "./Output.js"

/** The usage error for a `--root` (or PLINTH_ROOT) that is missing or not a folder. */
export const rootIsNotAFolder = (path: string) =>
  `--root '${path}' is not a folder; give the folder that holds one sub-folder per plugin (env PLINTH_ROOT, default '${DEFAULT_ROOT}')`

// Synchronous: one stat, where an asynchronous one would start libuv's thread pool for it (ADR 0018).
const isFolder = (path: string) =>
  Effect.sync(() => {
    try {
      return statSync(path).isDirectory()
    } catch {
      return false
    }
  })

/**
 * Runs `handler` only once `fields.root` (when the command has one) is a
 * folder: a root that is missing or a file is the same usage error (exit 2),
 * whether it came from `--root`, PLINTH_ROOT or the default.
 */
export const withRootFolder = <E, R>(
  name: string,
  fields: { readonly root?: unknown; readonly json?: unknown },
  handler: Effect.Effect<void, E, R>,
): Effect.Effect<void, E | UsageError, R | UserOutput> => {
  if (typeof fields.root !== "string") return handler
  const path = fields.root
  return Effect.flatMap(isFolder(path), (folder): Effect.Effect<void, E | UsageError, R | UserOutput> =>
    folder
      ? handler
      : Effect.fail(new UsageError({ message: rootIsNotAFolder(path), command: `plinth plugins ${name}` })).pipe(
          reportFailures(fields.json === true ? "json" : "human"),
        ),
  )
}
