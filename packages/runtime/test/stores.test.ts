import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import Sqlite from "better-sqlite3"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import {
  ConfigStore,
  ConfigStoreLive,
  ConfigStoreMemory,
  configHash,
  DatabaseLive,
  databasePath,
  EmpiricalStore,
  EmpiricalStoreLive,
  EmpiricalStoreMemory,
  SCHEMA_VERSION,
  type DatabaseOptions,
  type EmpiricalKey,
} from "@plinth/runtime"

const freshDataDir = () => join(mkdtempSync(join(tmpdir(), "plinth-stores-")), "nested", "data")
const configStoreAt = (options: DatabaseOptions) => ConfigStoreLive.pipe(Layer.provide(DatabaseLive(options)))
const empiricalStoreAt = (options: DatabaseOptions) => EmpiricalStoreLive().pipe(Layer.provide(DatabaseLive(options)))
/** Reads the file the way another program would, outside Plinth. */
const peek = <A>(file: string, f: (db: Sqlite.Database) => A): A => {
  const db = new Sqlite(file, { readonly: true })
  try {
    return f(db)
  } finally {
    db.close()
  }
}

const configStores = {
  sqlite: () => configStoreAt({ dataDir: freshDataDir() }),
  memory: () => ConfigStoreMemory,
}

describe.each(Object.entries(configStores))("ConfigStore (%s)", (_name, layer) => {
  it.effect("keeps each plugin's config and enabled flag, and setting one keeps the other", () =>
    Effect.gen(function* () {
      const store = yield* ConfigStore
      expect(Option.isNone(yield* store.get("hello"))).toBe(true)
      expect(yield* store.set("hello", { greeting: "hi", nested: { n: 1 } })).toMatchObject({ plugin: "hello", enabled: true })
      yield* store.setEnabled("hello", false)
      yield* store.setEnabled("other", false)
      yield* store.set("hello", { greeting: "hey" })
      expect(Option.getOrThrow(yield* store.get("hello"))).toMatchObject({ config: { greeting: "hey" }, enabled: false })
      expect(Option.getOrThrow(yield* store.get("other"))).toMatchObject({ config: {}, enabled: false })
      expect((yield* store.list).map((r) => r.plugin)).toEqual(["hello", "other"])
      expect(yield* store.remove("other")).toBe(true)
      expect(yield* store.remove("other")).toBe(false)
      expect((yield* store.list).map((r) => r.plugin)).toEqual(["hello"])
    }).pipe(Effect.provide(layer())),
  )
})

const key = (plugin: string, config: unknown = {}): EmpiricalKey => ({ plugin, pluginDigest: "h1:digest-of-" + plugin, configHash: configHash(config) })

describe("EmpiricalStore (memory)", () => {
  it.effect("folds each sample into its record at once", () =>
    Effect.gen(function* () {
      const store = yield* EmpiricalStore
      for (const wallMs of [20, 40, 60]) yield* store.record(key("p", { a: 1, b: 2 }), { success: wallMs !== 40, wallMs })
      const record = Option.getOrThrow(yield* store.get(key("p", { b: 2, a: 1 })))
      expect(record.aggregate).toMatchObject({ count: 3, successes: 2, wallMs: { mean: 40, max: 60 } })
      expect((yield* store.list("p")).length).toBe(1)
      expect(yield* store.list("nobody")).toEqual([])
    }).pipe(Effect.provide(EmpiricalStoreMemory)),
  )
})

describe("the SQLite database", () => {
  // Live clock: the background writer retries on a schedule, which a test clock would never advance.
  it.live("is one file in the data directory, created with its folder, in WAL mode, at the current schema version", () =>
    Effect.gen(function* () {
      const dataDir = freshDataDir()
      const store = yield* Effect.provide(ConfigStore, configStoreAt({ dataDir }))
      expect(store).toBeDefined()
      const file = databasePath({ dataDir })
      expect(file).toBe(join(dataDir, "plinth.db"))
      peek(file, (db) => {
        expect(db.pragma("journal_mode", { simple: true })).toBe("wal")
        expect(db.prepare("SELECT max(migration_id) AS v FROM plinth_migrations").get()).toEqual({ v: SCHEMA_VERSION })
      })
    }),
  )

  it.live("keeps configs, enabled flags and resource records across a close and reopen", () =>
    Effect.gen(function* () {
      const options = { dataDir: freshDataDir() }
      const closed = yield* Effect.gen(function* () {
        const configs = yield* ConfigStore
        yield* configs.set("hello", { greeting: "hi" })
        yield* configs.setEnabled("hello", false)
        const stats = yield* EmpiricalStore
        yield* stats.record(key("hello"), { success: true, wallMs: 20, cpuMs: 5, peakRssBytes: 1_000 })
        yield* stats.record(key("hello"), { success: false, wallMs: 60, cpuMs: 7, peakRssBytes: 3_000 })
        // No flush: closing the Layer writes what was recorded.
        return stats
      }).pipe(Effect.provide(Layer.merge(configStoreAt(options), empiricalStoreAt(options))))
      // A store kept past its Layer neither hangs nor writes.
      yield* closed.record(key("hello"), { success: true, wallMs: 1_000_000 })
      expect((yield* Effect.flip(closed.flush))._tag).toBe("StoreUnavailable")

      yield* Effect.gen(function* () {
        expect(Option.getOrThrow(yield* (yield* ConfigStore).get("hello"))).toMatchObject({ config: { greeting: "hi" }, enabled: false })
        const stats = yield* EmpiricalStore
        yield* stats.record(key("hello"), { success: true, wallMs: 40 })
        yield* stats.flush
        const record = Option.getOrThrow(yield* stats.get(key("hello")))
        expect(record.aggregate).toMatchObject({ count: 3, successes: 2, wallMs: { count: 3, mean: 40, max: 60 }, peakRssBytes: { count: 2, mean: 2_000, max: 3_000 } })
      }).pipe(Effect.provide(Layer.merge(configStoreAt(options), empiricalStoreAt(options))))
    }),
  )

  it.live("records samples without waiting for the disk, and flush writes them all", () =>
    Effect.gen(function* () {
      const options = { dataDir: freshDataDir() }
      const file = databasePath(options)
      yield* Effect.gen(function* () {
        const stats = yield* EmpiricalStore
        // Another process holds the write lock: a recording call that waited for the disk could not return.
        const other = new Sqlite(file)
        other.exec("BEGIN IMMEDIATE")
        try {
          for (let i = 1; i <= 1_000; i++) yield* stats.record(key("busy", { n: i % 2 }), { success: i % 4 !== 0, wallMs: i })
          expect(other.prepare("SELECT count(*) AS n FROM empirical_records").get()).toEqual({ n: 0 })
        } finally {
          other.exec("ROLLBACK")
          other.close()
        }
        yield* stats.flush
        const records = yield* stats.list("busy")
        expect(records.map((r) => r.aggregate.count)).toEqual([500, 500])
        expect(records.reduce((n, r) => n + r.aggregate.successes, 0)).toBe(750)
        const odd = Option.getOrThrow(yield* stats.get(key("busy", { n: 1 })))
        expect(odd.aggregate.wallMs.mean).toBe(500)
        expect(odd.aggregate.wallMs.max).toBe(999)
      }).pipe(Effect.provide(empiricalStoreAt(options)))
    }),
  )

  it.live("refuses a file written by a newer Plinth, naming the versions", () =>
    Effect.gen(function* () {
      const dataDir = freshDataDir()
      yield* Effect.provide(ConfigStore, configStoreAt({ dataDir }))
      const db = new Sqlite(databasePath({ dataDir }))
      db.prepare("INSERT INTO plinth_migrations (migration_id, name) VALUES (99, 'from_the_future')").run()
      db.close()
      const error = yield* Effect.flip(Effect.provide(ConfigStore, configStoreAt({ dataDir })))
      expect(error).toMatchObject({ _tag: "StoreSchemaMismatch", expected: SCHEMA_VERSION, found: 99 })
      expect(error.message).toContain("newer than this Plinth knows")
    }),
  )

  it.live("does not trust a migration record over the tables: a file claiming the version without them is refused", () =>
    Effect.gen(function* () {
      const dataDir = freshDataDir()
      mkdirSync(dataDir, { recursive: true })
      const db = new Sqlite(databasePath({ dataDir }))
      db.exec("CREATE TABLE plinth_migrations (migration_id integer PRIMARY KEY NOT NULL, created_at datetime NOT NULL DEFAULT current_timestamp, name VARCHAR(255) NOT NULL)")
      db.exec("INSERT INTO plinth_migrations (migration_id, name) VALUES (1, 'plugin_configs'), (2, 'empirical_records')")
      db.close()
      const error = yield* Effect.flip(Effect.provide(ConfigStore, configStoreAt({ dataDir })))
      expect(error).toMatchObject({ _tag: "StoreSchemaMismatch", expected: SCHEMA_VERSION, found: SCHEMA_VERSION })
      expect(error.message).toContain(`records schema version ${SCHEMA_VERSION} but tables plugin_configs, empirical_records are missing`)
    }),
  )

  it.live("reports a data directory that cannot be created as unavailable", () =>
    Effect.gen(function* () {
      const parent = freshDataDir()
      mkdirSync(dirname(parent), { recursive: true })
      writeFileSync(parent, "a file where the data directory's parent should be")
      const error = yield* Effect.flip(Effect.provide(ConfigStore, configStoreAt({ dataDir: join(parent, "data") })))
      expect(error._tag).toBe("StoreUnavailable")
      expect(error.message).toContain(join(parent, "data", "plinth.db"))
      expect(error.message).not.toContain("\n")
    }),
  )

  it.live("reports a file that is not a database as unavailable, in one line naming it", () =>
    Effect.gen(function* () {
      const dataDir = freshDataDir()
      const file = databasePath({ dataDir })
      mkdirSync(dataDir, { recursive: true })
      writeFileSync(file, "this is not a SQLite database, just text that is long enough to fill a header page".repeat(20))
      const error = yield* Effect.flip(Effect.provide(ConfigStore, configStoreAt({ dataDir })))
      expect(error._tag).toBe("StoreUnavailable")
      expect(error.message).toContain(file)
      expect(error.message).toMatch(/not a database/)
      expect(error.message).not.toContain("\n")
    }),
  )
})
