import { createHash } from "node:crypto"
import { Effect, Schedule } from "effect"
import * as SqlClient from "@effect/sql/SqlClient"
import { ClusterLockMismatch } from "../ClusterErrors.js"

/*
 * A runner joins the cluster only with the code the cluster runs: before it
 * takes any shard, its verified plugins' digest (one SHA-256 over each
 * plugin's id and locked tree digest) is compared, under a lock, with that of
 * every runner seen alive in the last STALE_AFTER_MILLIS. A difference is a
 * ClusterLockMismatch naming both digests. Changing the plugins means
 * stopping every runner first (or waiting until the old ones are stale).
 */

const HEARTBEAT_MILLIS = 3_000
/** A runner not heard from for this long is gone (killed): its code no longer speaks for the cluster. */
export const STALE_AFTER_MILLIS = 15_000

export const codeDigest = (verified: ReadonlyArray<{ readonly plugin: string; readonly digest: string }>): string => {
  const hash = createHash("sha256")
  for (const { plugin, digest } of [...verified].sort((a, b) => (a.plugin < b.plugin ? -1 : a.plugin > b.plugin ? 1 : 0))) {
    hash.update(`${plugin} ${digest}\n`)
  }
  return `sha256:${hash.digest("hex")}`
}

/** Joins (or refuses to), keeps this runner's heartbeat while the scope is open, and leaves when it closes. */
export const joinCluster = (runner: string, digest: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const joinedAt = Date.now()
    const heartbeat = (now: number) => sql`
      INSERT INTO plinth_runners (address, code_digest, joined_at, heartbeat_at) VALUES (${runner}, ${digest}, ${joinedAt}, ${now})
      ON CONFLICT (address) DO UPDATE SET code_digest = EXCLUDED.code_digest, joined_at = EXCLUDED.joined_at, heartbeat_at = EXCLUDED.heartbeat_at`
    yield* sql.withTransaction(
      Effect.gen(function* () {
        const now = Date.now()
        yield* sql`SELECT pg_advisory_xact_lock(7717002)`
        const live = yield* sql<{ address: string; code_digest: string }>`
          SELECT address, code_digest FROM plinth_runners WHERE heartbeat_at > ${now - STALE_AFTER_MILLIS} AND address <> ${runner}`
        const differing = live.filter((row) => row.code_digest !== digest)
        if (differing.length > 0) {
          return yield* new ClusterLockMismatch({ clusterDigest: differing[0]!.code_digest, runnerDigest: digest, runners: differing.map((row) => row.address).sort() })
        }
        yield* heartbeat(now)
      }),
    )
    // The row is written again at each beat, not only updated: another process that once used this address and left removes
    // only its own row (its joined_at), and a runner whose row was removed anyway is back in the table at its next beat.
    yield* Effect.forkScoped(Effect.schedule(Effect.ignore(Effect.suspend(() => heartbeat(Date.now()))), Schedule.spaced(HEARTBEAT_MILLIS)))
    yield* Effect.addFinalizer(() => Effect.ignore(sql`DELETE FROM plinth_runners WHERE address = ${runner} AND joined_at = ${joinedAt}`))
  })
