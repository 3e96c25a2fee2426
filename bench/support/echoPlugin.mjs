// The benchmarks' plugin: a no-op action, `echo` (and `pause`, which waits the milliseconds it is
// given, for the cluster's failover runs), in a locked root with its manifest declared,
// as `plinth plugins describe --write` and `plinth plugins lock` leave it; `lockedPluginRoot` does the
// same for any other plugin source.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Effect } from "effect"
import { describePlugin, lockPlugins, PlinthLive } from "@plinth/runtime"

const pluginSource = `import { Effect, Schema } from "effect"
import { definePlugin } from "@plinth/domain"
export default definePlugin({ config: Schema.Struct({}), actions: ({ action }) => ({
  echo: action({ description: "echo", input: Schema.Struct({ text: Schema.String }), output: Schema.Struct({ text: Schema.String }), handler: (input) => Effect.succeed(input) }),
  pause: action({ description: "pause", input: Schema.Struct({ millis: Schema.Int }), output: Schema.Struct({ millis: Schema.Int }), handler: (input) => Effect.as(Effect.sleep(input.millis), input) }),
}) })`

/**
 * Writes `<dir>/plugins/<id>` from `source` and locks it, with the manifest's declaration filled in
 * from the plugin itself; returns the root, the lock, and the plugin as `startInstance` takes it.
 */
export const lockedPluginRoot = async (dir, id, source) => {
  const root = join(dir, "plugins")
  const pluginDir = join(root, id)
  mkdirSync(pluginDir, { recursive: true })
  writeFileSync(join(pluginDir, "index.js"), source)
  const bare = { id, version: "1.0.0", description: id, entry: "index.js" }
  writeFileSync(join(pluginDir, "plugin.json"), JSON.stringify(bare))
  const lock = join(dir, "PLUGINS.lock")
  const lockNow = () => Effect.runPromise(lockPlugins({ root, lock, check: false }).pipe(Effect.provide(PlinthLive)))
  await lockNow()
  // The host calls only what the manifest declares: write the declaration into it, as `describe --write` does.
  const firstLock = JSON.parse(readFileSync(lock, "utf8")).plugins[id]
  const declaration = await Effect.runPromise(
    describePlugin({ plugin: { id, dir: pluginDir, manifest: bare }, locked: firstLock }).pipe(Effect.provide(PlinthLive)),
  )
  const manifest = { ...bare, actions: declaration.actions, config: declaration.config }
  writeFileSync(join(pluginDir, "plugin.json"), JSON.stringify(manifest))
  await lockNow()
  const locked = JSON.parse(readFileSync(lock, "utf8")).plugins[id]
  return { root, lock, plugin: { id, dir: pluginDir, manifest }, locked }
}

/** Writes and locks `<dir>/plugins/echo` (see `lockedPluginRoot`). */
export const echoPluginRoot = (dir) => lockedPluginRoot(dir, "echo", pluginSource)
