import { Effect, Layer, Option } from "effect"
import { ConfigStore } from "../stores/ConfigStore.js"
import { ManagerConfigs } from "./ManagerConfigs.js"

/*
 * The manager's memory of each plugin's default instance (config and enabled
 * flag) kept in the SQLite ConfigStore, so both survive a restart. A store
 * that cannot be read or written does not stop a call: the manager goes on
 * with its defaults (or its state in memory) and the failure is logged.
 */
export const ManagerConfigsFromStore: Layer.Layer<ManagerConfigs, never, ConfigStore> = Layer.effect(
  ManagerConfigs,
  Effect.map(ConfigStore, (store) =>
    ManagerConfigs.of({
      get: (plugin) =>
        store.get(plugin).pipe(
          Effect.map(Option.map((record) => ({ config: record.config, enabled: record.enabled }))),
          Effect.catchAll((error) => Effect.as(Effect.logWarning(`the stored config of '${plugin}' was not read: ${error.message}`), Option.none())),
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
