import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Context, Effect, Layer, Option, Ref, Schema } from "effect"
import { StoreDatabase } from "./Database.js"
import { StoreUnavailable } from "./StoreErrors.js"

/** A plugin's configuration as JSON (an object). */
export type PluginConfig = { readonly [key: string]: unknown }

/** What Plinth remembers about a plugin's default instance across restarts. */
export interface PluginConfigRecord {
  readonly plugin: string
  readonly config: PluginConfig
  readonly enabled: boolean
  /** Epoch milliseconds of the last change. */
  readonly updatedAt: number
}

/**
 * Per plugin: its configuration and whether it is enabled. A plugin without a
 * record has never been configured (the manager's defaults apply: enabled, no
 * config). Setting one field keeps the other.
 */
export class ConfigStore extends Context.Tag("@plinth/runtime/ConfigStore")<
  ConfigStore,
  {
    readonly get: (plugin: string) => Effect.Effect<Option.Option<PluginConfigRecord>, StoreUnavailable>
    readonly set: (plugin: string, config: PluginConfig) => Effect.Effect<PluginConfigRecord, StoreUnavailable>
    readonly setEnabled: (plugin: string, enabled: boolean) => Effect.Effect<PluginConfigRecord, StoreUnavailable>
    /** Every record, by plugin id. */
    readonly list: Effect.Effect<ReadonlyArray<PluginConfigRecord>, StoreUnavailable>
    /** Forgets a plugin's record; true when there was one. */
    readonly remove: (plugin: string) => Effect.Effect<boolean, StoreUnavailable>
  }
>() {}

interface Row {
  readonly plugin: string
  readonly config_json: string
  readonly enabled: number
  readonly updated_at: number
}

const ConfigJson = Schema.parseJson(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
const decodeConfig = Schema.decodeUnknownOption(ConfigJson)

/** Each write is one autocommitted statement (an upsert), so it needs no transaction and cannot half-apply. */
export const ConfigStoreLive: Layer.Layer<ConfigStore, never, StoreDatabase> = Layer.effect(
  ConfigStore,
  Effect.gen(function* () {
    const { path, sql } = yield* StoreDatabase
    const toRecord = (row: Row): Effect.Effect<PluginConfigRecord, StoreUnavailable> =>
      Option.match(decodeConfig(row.config_json), {
        onNone: () => Effect.fail(new StoreUnavailable({ path, reason: `the stored config of plugin '${row.plugin}' is not a JSON object` })),
        onSome: (config) => Effect.succeed({ plugin: row.plugin, config, enabled: row.enabled !== 0, updatedAt: row.updated_at }),
      })
    const one = (rows: ReadonlyArray<Row>) => (rows[0] === undefined ? Effect.succeed(Option.none()) : Effect.map(toRecord(rows[0]), Option.some))
    const unavailable = <A, R>(effect: Effect.Effect<A, SqlError | StoreUnavailable, R>) =>
      Effect.catchTag(effect, "SqlError", (e) => Effect.fail(StoreUnavailable.fromSql(path, e)))
    const upserted = (rows: ReadonlyArray<Row>) =>
      rows[0] === undefined ? Effect.die(new Error("an upsert returned no row")) : toRecord(rows[0])

    return {
      get: (plugin) => sql<Row>`SELECT * FROM plugin_configs WHERE plugin = ${plugin}`.pipe(Effect.flatMap(one), unavailable),
      set: (plugin, config) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          sql<Row>`INSERT INTO plugin_configs (plugin, config_json, enabled, updated_at) VALUES (${plugin}, ${JSON.stringify(config)}, 1, ${now})
            ON CONFLICT (plugin) DO UPDATE SET config_json = excluded.config_json, updated_at = excluded.updated_at
            RETURNING *`.pipe(Effect.flatMap(upserted)),
        ).pipe(unavailable),
      setEnabled: (plugin, enabled) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          sql<Row>`INSERT INTO plugin_configs (plugin, config_json, enabled, updated_at) VALUES (${plugin}, '{}', ${enabled ? 1 : 0}, ${now})
            ON CONFLICT (plugin) DO UPDATE SET enabled = excluded.enabled, updated_at = excluded.updated_at
            RETURNING *`.pipe(Effect.flatMap(upserted)),
        ).pipe(unavailable),
      list: sql<Row>`SELECT * FROM plugin_configs ORDER BY plugin`.pipe(Effect.flatMap(Effect.forEach(toRecord)), unavailable),
      remove: (plugin) =>
        sql<{ readonly plugin: string }>`DELETE FROM plugin_configs WHERE plugin = ${plugin} RETURNING plugin`.pipe(
          Effect.map((rows) => rows.length > 0),
          unavailable,
        ),
    }
  }),
)

/** The same behaviour in memory, for tests of code that uses the store; nothing survives the Layer. */
export const ConfigStoreMemory: Layer.Layer<ConfigStore> = Layer.effect(
  ConfigStore,
  Effect.gen(function* () {
    const records = yield* Ref.make(new Map<string, PluginConfigRecord>())
    const update = (plugin: string, change: (r: PluginConfigRecord) => PluginConfigRecord) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Ref.modify(records, (m) => {
          const next = change({ ...(m.get(plugin) ?? { plugin, config: {}, enabled: true }), updatedAt: now })
          return [next, new Map(m).set(plugin, next)] as const
        }),
      )
    return {
      get: (plugin) => Effect.map(Ref.get(records), (m) => Option.fromNullable(m.get(plugin))),
      // A copy, as the database would hand back: later changes by the caller do not leak in.
      set: (plugin, config) => update(plugin, (r) => ({ ...r, config: structuredClone(config) })),
      setEnabled: (plugin, enabled) => update(plugin, (r) => ({ ...r, enabled })),
      list: Effect.map(Ref.get(records), (m) => [...m.values()].sort((a, b) => (a.plugin < b.plugin ? -1 : a.plugin > b.plugin ? 1 : 0))),
      remove: (plugin) => Ref.modify(records, (m) => (m.has(plugin) ? [true, new Map([...m].filter(([k]) => k !== plugin))] : [false, m])),
    }
  }),
)
