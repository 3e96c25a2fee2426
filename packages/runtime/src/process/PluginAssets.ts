import { Effect } from "effect"
import { PluginFileNotFound, type PluginAssets } from "@plinth/domain"

/*
 * A plugin's own files for its handlers (`context.files`), served from the
 * verified bytes the host sent with Load. The worker cannot read the plugin
 * folder on disk (it is neither granted nor mounted), so these are the only
 * plugin bytes it ever sees: whatever happens to the folder after
 * verification, a plugin reads what was reviewed and locked.
 */

export const makePluginAssets = (files: ReadonlyMap<string, Uint8Array>): PluginAssets => {
  const decoder = new TextDecoder("utf-8")
  const sorted = [...files.keys()].sort()
  const bytesOf = (path: string) =>
    Effect.suspend(() => {
      // A Map keyed by path: names like "__proto__" are ordinary keys here.
      const bytes = typeof path === "string" ? files.get(path) : undefined
      return bytes === undefined ? Effect.fail(new PluginFileNotFound({ path: String(path) })) : Effect.succeed(bytes)
    })
  return {
    // A copy, so a plugin that writes into the array changes nothing it reads later.
    read: (path) => Effect.map(bytesOf(path), (bytes) => bytes.slice()),
    readText: (path) => Effect.map(bytesOf(path), (bytes) => decoder.decode(bytes)),
    list: (prefix) => Effect.sync(() => (prefix === undefined ? sorted : sorted.filter((path) => path.startsWith(prefix)))),
  }
}
