import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Exit, Option } from "effect"

export interface ImmediateOptions {
  /**
   * How long this BEGIN may wait for another process's write lock, if not the
   * connection's busy timeout. better-sqlite3 is synchronous: SQLite's wait
   * blocks the whole event loop, so a background writer waits briefly and
   * retries asynchronously instead. Restored to `busyTimeoutMs` afterwards.
   */
  readonly lockWaitMs?: number | undefined
}

/**
 * Runs `effect` in a `BEGIN IMMEDIATE` transaction: the write lock is taken
 * up front (waiting up to the busy timeout), so a read-then-write cannot fail
 * half-way with SQLITE_BUSY as `withTransaction`'s deferred `BEGIN` can when
 * another process writes in between. Statements inside use the transaction's
 * connection; a nested `withTransaction` (the Migrator's) becomes a savepoint.
 */
export const withImmediateTransaction =
  (sql: SqlClient.SqlClient, busyTimeoutMs: number) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>, options: ImmediateOptions = {}): Effect.Effect<A, E | SqlError, R> =>
    Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (outer) =>
      Option.isSome(outer)
        ? effect
        : Effect.uninterruptibleMask((restore) =>
            Effect.scoped(
              Effect.gen(function* () {
                const conn = yield* sql.reserve
                // The connection is ours until the scope closes, so no other statement sees the shorter wait.
                if (options.lockWaitMs !== undefined) {
                  yield* conn.executeUnprepared(`PRAGMA busy_timeout = ${Math.max(0, Math.trunc(options.lockWaitMs))}`, [], undefined)
                  yield* Effect.addFinalizer(() => Effect.ignore(conn.executeUnprepared(`PRAGMA busy_timeout = ${busyTimeoutMs}`, [], undefined)))
                }
                yield* conn.executeUnprepared("BEGIN IMMEDIATE", [], undefined)
                const exit = yield* Effect.exit(restore(Effect.provideService(effect, SqlClient.TransactionConnection, [conn, 0] as const)))
                if (Exit.isSuccess(exit)) {
                  const committed = yield* Effect.exit(conn.executeUnprepared("COMMIT", [], undefined))
                  if (Exit.isSuccess(committed)) return exit.value
                  yield* Effect.ignore(conn.executeUnprepared("ROLLBACK", [], undefined))
                  return yield* Effect.failCause(committed.cause)
                }
                yield* Effect.ignore(conn.executeUnprepared("ROLLBACK", [], undefined))
                return yield* Effect.failCause(exit.cause)
              }),
            ),
          ),
    )
