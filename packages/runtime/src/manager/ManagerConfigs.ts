import { Context, Effect, Layer, Option } from "effect"
import { ConfigStore } from "../stores/ConfigStore.js"

/*
 * What the PluginManager remembers of a plugin's default instance: its config
 * and whether it is enabled. Behind this small interface so that the SQLite
 * ConfigStore can take the place of the in-memory map without the manager
 * changing. Extra instances (`newInstance`, explicit ids) are not remembered.
 */

export interface StoredPluginState {
  readonly config: Readonly<Record<string, unknown>>
  readonly enabled: boolean
}

export class ManagerConfigs extends Context.Tag("@plinth/runtime/ManagerConfigs")<
  ManagerConfigs,
  {
    readonly get: (plugin: string) => Effect.Effect<Option.Option<StoredPluginState>>
    readonly save: (plugin: string, state: StoredPluginState) => Effect.Effect<void>
  }
>() {}

/** A map in memory: what the manager uses when no ManagerConfigs is provided. Gone when the process ends. */
export const makeInMemoryManagerConfigs = (): Context.Tag.Service<ManagerConfigs> => {
  const states = new Map<string, StoredPluginState>()
  return {
    get: (plugin) => Effect.sync(() => Option.fromNullable(states.get(plugin))),
    save: (plugin, state) => Effect.sync(() => void states.set(plugin, state)),
  }
}

export const InMemoryManagerConfigs = Layer.sync(ManagerConfigs, makeInMemoryManagerConfigs)

/**
 * The manager's memory on the ConfigStore (SQLite in `ConfigStoreLive`): the
 * default instance's config and enabled flag survive a restart. Reading fails
 * loud (a defect carrying the StoreUnavailable): loading a plugin with `{}`
 * instead of its saved config, unnoticed, would be worse than not loading it.
 * A write that fails leaves the running instance as asked and logs a warning:
 * only the memory of it is lost.
 */
export const ManagerConfigsFromStore: Layer.Layer<ManagerConfigs, never, ConfigStore> = Layer.effect(
  ManagerConfigs,
  Effect.map(ConfigStore, (store) => ({
    get: (plugin) =>
      store.get(plugin).pipe(
        Effect.map(Option.map((record): StoredPluginState => ({ config: record.config, enabled: record.enabled }))),
        Effect.orDie,
      ),
    save: (plugin, state) =>
      Effect.zipRight(store.set(plugin, state.config), store.setEnabled(plugin, state.enabled)).pipe(
        Effect.asVoid,
        Effect.catchAll((error) => Effect.logWarning(`the state of plugin '${plugin}' was not saved: ${error.message}`)),
      ),
  })),
)
