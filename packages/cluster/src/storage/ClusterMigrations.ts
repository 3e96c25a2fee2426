import { Effect, Schedule } from "effect"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"

/*
 * Plinth's own tables in the cluster's Postgres database, next to the ones
 * @effect/cluster keeps (cluster_messages, cluster_replies, cluster_runners,
 * cluster_locks). Applied by every runner and client at start, each migration
 * once: the Migrator locks its table while it migrates. Two processes that
 * start together may both try to create that table; the loser tries again.
 */

const jobs = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  // One row per job: the Job as the domain encodes it (the single-host journal's record), plus the columns the queue sorts and filters by.
  yield* sql`
    CREATE TABLE plinth_jobs (
      id text PRIMARY KEY,
      status text NOT NULL,
      priority double precision NOT NULL,
      idempotency_key text UNIQUE,
      submitted_at bigint NOT NULL,
      finished_at bigint,
      runner text,
      job jsonb NOT NULL,
      logs jsonb
    )`
  yield* sql`CREATE INDEX plinth_jobs_pending ON plinth_jobs (priority DESC, submitted_at, id) WHERE status = 'pending'`
  yield* sql`CREATE INDEX plinth_jobs_running ON plinth_jobs (submitted_at) WHERE status = 'running'`
  yield* sql`CREATE INDEX plinth_jobs_finished ON plinth_jobs (finished_at DESC) WHERE finished_at IS NOT NULL`
  // The runners that have joined, with the code they run (ClusterMembership).
  yield* sql`
    CREATE TABLE plinth_runners (
      address text PRIMARY KEY,
      code_digest text NOT NULL,
      joined_at bigint NOT NULL,
      heartbeat_at bigint NOT NULL
    )`
})

const sequences = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  // One row per sequence: the JobSequence as the domain encodes it. Its steps are jobs with rows of their own.
  yield* sql`
    CREATE TABLE plinth_sequences (
      id text PRIMARY KEY,
      status text NOT NULL,
      submitted_at bigint NOT NULL,
      finished_at bigint,
      sequence jsonb NOT NULL
    )`
})

export const migrateClusterTables = Migrator.make({})({ loader: Migrator.fromRecord({ "1_plinth_jobs": jobs, "2_plinth_sequences": sequences }), table: "plinth_migrations" }).pipe(
  Effect.retry({ times: 3, schedule: Schedule.spaced("100 millis") }),
  Effect.asVoid,
)
