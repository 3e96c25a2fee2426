import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import { StoreSchemaMismatch, StoreUnavailable } from "./StoreErrors.js"
import { withImmediateTransaction } from "./Transaction.js"

/*
 * Every table Plinth keeps in its database, as numbered migrations. Add new
 * ones at the end (never edit one that has shipped) and raise SCHEMA_VERSION.
 */
export const migrations: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> = {
  "1_plugin_configs": Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`CREATE TABLE IF NOT EXISTS plugin_configs (
      plugin TEXT PRIMARY KEY NOT NULL,
      config_json TEXT NOT NULL DEFAULT '{}',
      enabled INTEGER NOT NULL DEFAULT 1,
      updated_at INTEGER NOT NULL
    )`,
  ),
  "2_empirical_records": Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`CREATE TABLE IF NOT EXISTS empirical_records (
      plugin TEXT NOT NULL,
      plugin_digest TEXT NOT NULL,
      config_hash TEXT NOT NULL,
      calls INTEGER NOT NULL,
      successes INTEGER NOT NULL,
      wall_count INTEGER NOT NULL, wall_mean REAL NOT NULL, wall_m2 REAL NOT NULL, wall_max REAL NOT NULL,
      cpu_count INTEGER NOT NULL, cpu_mean REAL NOT NULL, cpu_m2 REAL NOT NULL, cpu_max REAL NOT NULL,
      rss_count INTEGER NOT NULL, rss_mean REAL NOT NULL, rss_m2 REAL NOT NULL, rss_max REAL NOT NULL,
      updated_at INTEGER NOT NULL,
      PRIMARY KEY (plugin, plugin_digest, config_hash)
    )`,
  ),
  // The job queue's journal (ADR 0030). `seq` is the rowid: given on a job's first write and kept by
  // the upsert, it is the submission order. `job_json` is the whole job as the domain Schema encodes
  // it, the one source of truth; the other columns are for the journal's queries and for people
  // reading the file. `finished_at` is NULL exactly while the job has not finished.
  "3_job_journal": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.all(
      [
        sql`CREATE TABLE IF NOT EXISTS jobs (
          seq INTEGER PRIMARY KEY,
          id TEXT NOT NULL UNIQUE,
          instance TEXT NOT NULL,
          action TEXT NOT NULL,
          priority REAL NOT NULL,
          status TEXT NOT NULL,
          idempotency_key TEXT,
          submitted_at INTEGER NOT NULL,
          started_at INTEGER,
          finished_at INTEGER,
          progress REAL NOT NULL,
          retry_count INTEGER NOT NULL,
          sequence_id TEXT,
          sequence_index INTEGER,
          job_json TEXT NOT NULL
        )`,
        sql`CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency_key ON jobs (idempotency_key) WHERE idempotency_key IS NOT NULL`,
        sql`CREATE INDEX IF NOT EXISTS jobs_unfinished ON jobs (seq) WHERE finished_at IS NULL`,
        sql`CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (finished_at DESC, seq DESC) WHERE finished_at IS NOT NULL`,
        sql`CREATE TABLE IF NOT EXISTS job_sequences (
          seq INTEGER PRIMARY KEY,
          id TEXT NOT NULL UNIQUE,
          status TEXT NOT NULL,
          submitted_at INTEGER NOT NULL,
          finished_at INTEGER,
          sequence_json TEXT NOT NULL
        )`,
        sql`CREATE INDEX IF NOT EXISTS job_sequences_unfinished ON job_sequences (seq) WHERE finished_at IS NULL`,
        sql`CREATE INDEX IF NOT EXISTS job_sequences_finished ON job_sequences (finished_at DESC, seq DESC) WHERE finished_at IS NOT NULL`,
      ],
      { discard: true },
    ),
  ),
}

/** The highest migration id above: what a usable database file records after start-up. */
export const SCHEMA_VERSION = 3
/** The tables the stores read and write; each must exist after migration. */
export const STORE_TABLES: ReadonlyArray<string> = ["plugin_configs", "empirical_records", "jobs", "job_sequences"]
export const MIGRATIONS_TABLE = "plinth_migrations"

// The generic Migrator: SQLite's variant adds a schema dump that shells out to the sqlite3 command.
const runMigrations = Migrator.make({})({ loader: Migrator.fromRecord(migrations), table: MIGRATIONS_TABLE })

/** The schema version a file records: the highest applied migration, 0 before any. */
export const schemaVersion: Effect.Effect<number, SqlError, SqlClient.SqlClient> = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) =>
    Effect.flatMap(
      sql<{ readonly name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' AND name = ${MIGRATIONS_TABLE}`,
      (tables) =>
        tables.length === 0
          ? Effect.succeed(0)
          : Effect.map(
              sql<{ readonly version: number | null }>`SELECT max(migration_id) AS version FROM ${sql(MIGRATIONS_TABLE)}`,
              (rows) => rows[0]?.version ?? 0,
            ),
    ),
)

/**
 * Brings the file to SCHEMA_VERSION and then checks that it got there. The
 * Migrator runs inside one IMMEDIATE transaction, so processes starting at
 * once on a fresh file take turns instead of racing (the Migrator alone can
 * report success on a file another process is still migrating); the check
 * afterwards is what the rest of Plinth relies on, whatever the Migrator said.
 */
export const migrateAndVerify = (path: string, busyTimeoutMs: number): Effect.Effect<void, StoreUnavailable | StoreSchemaMismatch, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* withImmediateTransaction(sql, busyTimeoutMs)(runMigrations).pipe(
      Effect.catchTags({
        SqlError: (e) => Effect.fail(StoreUnavailable.fromSql(path, e)),
        MigrationError: (e) => Effect.fail(new StoreUnavailable({ path, reason: `migration failed: ${e.message}` })),
      }),
    )
    const found = yield* schemaVersion.pipe(Effect.mapError((e) => StoreUnavailable.fromSql(path, e)))
    if (found !== SCHEMA_VERSION) {
      return yield* new StoreSchemaMismatch({ path, expected: SCHEMA_VERSION, found, detail: `it records version ${found}` })
    }
    const present = yield* sql<{ readonly name: string }>`SELECT name FROM sqlite_master WHERE type = 'table'`.pipe(
      Effect.mapError((e) => StoreUnavailable.fromSql(path, e)),
    )
    const missing = STORE_TABLES.filter((t) => !present.some((p) => p.name === t))
    if (missing.length > 0) {
      return yield* new StoreSchemaMismatch({ path, expected: SCHEMA_VERSION, found, detail: `${missing.length === 1 ? "table" : "tables"} ${missing.join(", ")} ${missing.length === 1 ? "is" : "are"} missing` })
    }
  }).pipe(Effect.catchAllDefect((defect) => Effect.fail(StoreUnavailable.fromDefect(path, defect))))
