import { existsSync } from "node:fs"
import { Effect, Layer } from "effect"
import { ConfigStoreLive, databasePath, DatabaseLive, discoverAndVerify, EmpiricalStoreLive, PluginNotFound } from "@plinth/runtime"

/*
 * What `plinth plugins enable|disable|config|stats` share: the persisted
 * state of plugins in the database under --data-dir, and the lock-verified
 * plugin a change is about.
 */

/** Whether `<dataDir>/plinth.db` exists: a command that only reads creates none (there is nothing to read). */
export const databaseExists = (dataDir: string) => existsSync(databasePath({ dataDir }))

/** The ConfigStore and EmpiricalStore over `<dataDir>/plinth.db` (created and migrated when missing). */
export const storesIn = (dataDir: string) =>
  Layer.merge(ConfigStoreLive, EmpiricalStoreLive()).pipe(Layer.provide(DatabaseLive({ dataDir })))

/**
 * The plugin `id` after every plugin under `root` is verified against `lock`:
 * a change is recorded only for a plugin that would be allowed to run.
 */
export const verifiedPlugin = (root: string, lock: string, id: string) =>
  Effect.flatMap(discoverAndVerify({ root, lock }), ({ discovered }) => {
    const plugin = discovered.find((p) => p.id === id)
    return plugin === undefined ? Effect.fail(new PluginNotFound({ plugin: id, known: discovered.map((p) => p.id).sort() })) : Effect.succeed(plugin)
  })
