import { Context, Effect, Layer, Option } from "effect"

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
