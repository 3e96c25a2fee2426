import { join } from "node:path"
import { Layer } from "effect"
import { PlinthLive } from "./Layers.js"
import { PluginManagerLive, type PluginManagerOptions } from "./manager/PluginManager.js"
import { CallTraceLive } from "./observability/CallTrace.js"
import { ManagerConfigsFromStore } from "./manager/ManagerConfigs.js"
import { ConfigStoreLive } from "./stores/ConfigStore.js"
import { DatabaseLive, DEFAULT_DATA_DIR, type DatabaseOptions } from "./stores/Database.js"
import { EmpiricalStoreLive, type EmpiricalStoreOptions } from "./stores/EmpiricalStore.js"
import { JobJournalLive, type JobJournalOptions } from "./stores/JobJournalLive.js"
import { SecretStoreLive } from "./stores/SecretStore.js"

/*
 * One Layer for a host: verification, the PluginManager and the stores, wired
 * over one data directory. `Effect.provide(PlinthHost({ root, lock }))` is the
 * whole of a host's wiring.
 */

export interface PlinthHostOptions extends Omit<PluginManagerOptions, "dataRoot"> {
  /**
   * Where Plinth keeps its state (default `.plinth`): the database
   * (`plinth.db`: each plugin's config and enabled flag, the job journal, the measured resource
   * use), the secret store (`secrets/`) and the folders `dataDir` grants (`data/<plugin>`).
   */
  readonly dataDir?: string
  /** The database file, when it is not `<dataDir>/plinth.db`, and its busy timeout. */
  readonly database?: Omit<DatabaseOptions, "dataDir">
  readonly empirical?: EmpiricalStoreOptions
  /** The job queue's journal in the same database (finished jobs kept, write grouping). */
  readonly journal?: JobJournalOptions
  /** The call history the manager appends to (its retries after eviction), default `<dataDir>/trace.jsonl`: what `plinth plugins trace` reads. */
  readonly trace?: string
}

/**
 * Verifies every plugin under `root` against `lock` and provides the
 * PluginManager with its config and enabled flags kept in the ConfigStore
 * (they survive a restart), resource samples going to the EmpiricalStore,
 * and each plugin's declared secrets read from the SecretStore at start. It
 * also provides the stores themselves and the services of `PlinthLive`.
 * Closing the Layer stops every worker first, then flushes and closes the stores.
 * Every other option is the manager's (see PluginManagerOptions).
 */
export const PlinthHost = (options: PlinthHostOptions) => {
  const { dataDir = DEFAULT_DATA_DIR, database, empirical, journal, trace, ...managerOptions } = options
  const Stores = Layer.mergeAll(ConfigStoreLive, EmpiricalStoreLive(empirical), JobJournalLive(journal)).pipe(
    Layer.provideMerge(DatabaseLive({ ...database, dataDir })),
  )
  return PluginManagerLive({ ...managerOptions, dataRoot: join(dataDir, "data") }).pipe(
    Layer.provide(ManagerConfigsFromStore),
    Layer.provideMerge(Layer.mergeAll(Stores, SecretStoreLive(dataDir), CallTraceLive(trace ?? join(dataDir, "trace.jsonl")))),
    Layer.provideMerge(PlinthLive),
  )
}
