import { Effect, Layer, Option } from "effect"
import { ConfigStore } from "../stores/ConfigStore.js"
import { ManagerConfigs } from "./ManagerConfigs.js"

/*
 * The manager's memory of each plugin's default instance (config and enabled
 * flag) kept in the SQLite ConfigStore, so both survive a restart. A record
 * that cannot be read stops the load (a defect carrying the StoreUnavailable):
 * starting with the defaults could run a plugin its operator disabled. A
 * record that cannot be written is logged; the manager keeps the state in memory.
 */
export const ManagerConfigsFromStore: Layer.Layer<ManagerConfigs, never, ConfigStore> = Layer.effect(
  ManagerConfigs,
  Effect.map(ConfigStore, (store) =>
    ManagerConfigs.of({
      get: (plugin) =>
        store.get(plugin).pipe(
          Effect.map(Option.map((record) => ({ config: record.config, enabled: record.enabled }))),
          Effect.orDie,
        ),
      save: (plugin, state) =>
        store.set(plugin, state.config).pipe(
          Effect.zipRight(store.setEnabled(plugin, state.enabled)),
          Effect.asVoid,
          Effect.catchAll((error) => Effect.logWarning(`the config of '${plugin}' was not stored: ${error.message}`)),
        ),
    }),
  ),
)
