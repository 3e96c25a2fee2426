import { mkdirSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { Context, Duration, Effect, Exit, Layer, Schedule, Scope } from "effect"
import { migrateAndVerify } from "./Migrations.js"
import { StoreSchemaMismatch, StoreUnavailable } from "./StoreErrors.js"
import { withImmediateTransaction, type ImmediateOptions } from "./Transaction.js"

/** Where Plinth keeps its state unless told otherwise (relative to the working directory). */
export const DEFAULT_DATA_DIR = ".plinth"
/** The one SQLite file inside the data directory. */
export const DATABASE_FILE = "plinth.db"
/** How long a statement waits for another process's write lock (blocking this process's event loop meanwhile). */
export const DEFAULT_BUSY_TIMEOUT_MS = 5_000

export interface DatabaseOptions {
  /** The folder for Plinth's state; default `.plinth`. Created when missing. */
  readonly dataDir?: string | undefined
  /** The database file itself; default `<dataDir>/plinth.db`. */
  readonly filename?: string | undefined
  /** How long a write waits for another process's lock before failing; default 5 s. */
  readonly busyTimeoutMs?: number | undefined
}

export const databasePath = (options: DatabaseOptions = {}): string =>
  resolve(options.filename ?? join(options.dataDir ?? DEFAULT_DATA_DIR, DATABASE_FILE))

/**
 * The opened, migrated and verified database. Stores depend on this rather
 * than on a bare SqlClient, so none can run against an unmigrated file.
 */
export class StoreDatabase extends Context.Tag("@plinth/runtime/StoreDatabase")<
  StoreDatabase,
  {
    readonly path: string
    readonly sql: SqlClient.SqlClient
    /** Runs `effect` in a BEGIN IMMEDIATE transaction (see Transaction.ts). */
    readonly immediate: <A, E, R>(effect: Effect.Effect<A, E, R>, options?: ImmediateOptions) => Effect.Effect<A, E | SqlError, R>
  }
>() {}

/**
 * Opens the one database file (creating its folder), in WAL mode with a busy
 * timeout and full sync, then migrates and verifies it. The connection closes
 * with the Layer's scope.
 */
export const DatabaseLive = (options: DatabaseOptions = {}): Layer.Layer<StoreDatabase, StoreUnavailable | StoreSchemaMismatch> =>
  Layer.scoped(
    StoreDatabase,
    Effect.gen(function* () {
      const path = databasePath(options)
      yield* Effect.try({
        try: () => mkdirSync(dirname(path), { recursive: true }),
        catch: (e) => StoreUnavailable.fromDefect(path, e),
      })
      const busyTimeout = Math.max(0, Math.trunc(options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS))
      // Switching a fresh file to WAL needs the file to itself, and SQLite may refuse that at once
      // (SQLITE_BUSY, without waiting) while another process opens it: each try opens in a scope of
      // its own, closed if the try fails, and a busy file is tried again for up to the busy timeout.
      const openOnce = Effect.gen(function* () {
        const scope = yield* Scope.make()
        const sql = yield* Effect.gen(function* () {
          // better-sqlite3 throws from its constructor and from the WAL pragma SqliteClient runs: those arrive as defects.
          const sql = yield* SqliteClient.make({ filename: path }).pipe(
            Effect.provide(Reactivity.layer),
            Effect.catchAllDefect((d) => Effect.fail(StoreUnavailable.fromDefect(path, d))),
          )
          yield* sql.unsafe(`PRAGMA busy_timeout = ${busyTimeout}`).pipe(
            Effect.zipRight(sql`PRAGMA synchronous = FULL`),
            Effect.zipRight(sql<{ readonly journal_mode: string }>`PRAGMA journal_mode`),
            Effect.flatMap((rows) =>
              rows[0]?.journal_mode === "wal"
                ? Effect.void
                : Effect.fail(new StoreUnavailable({ path, reason: `the file is not in WAL mode (${rows[0]?.journal_mode ?? "unknown"})` })),
            ),
            Effect.catchTag("SqlError", (e) => Effect.fail(StoreUnavailable.fromSql(path, e))),
            Effect.catchAllDefect((d) => Effect.fail(StoreUnavailable.fromDefect(path, d))),
          )
          return sql
        }).pipe(Scope.extend(scope), Effect.onError(() => Scope.close(scope, Exit.void)))
        return { sql, scope }
      })
      const { sql, scope } = yield* openOnce.pipe(
        Effect.retry({
          while: (e) => /SQLITE_BUSY|database is locked/.test(e.reason),
          schedule: Schedule.exponential("5 millis", 1.5).pipe(Schedule.jittered, Schedule.upTo(Duration.millis(Math.max(busyTimeout, 100)))),
        }),
      )
      yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
      yield* migrateAndVerify(path, busyTimeout).pipe(Effect.provideService(SqlClient.SqlClient, sql))
      return { path, sql, immediate: withImmediateTransaction(sql, busyTimeout) }
    }),
  )
