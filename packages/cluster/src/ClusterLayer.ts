import { RunnerAddress, RunnerHealth, Runners, ShardingConfig, SocketRunner, SqlMessageStorage, SqlRunnerStorage } from "@effect/cluster"
import { RpcSerialization } from "@effect/rpc"
import { NodeClusterSocket } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Layer, Option, Redacted, Schedule } from "effect"
import { JobQueue, PluginManager, type JobQueueOptions } from "@plinth/runtime"
import { ClusterDatabaseUnavailable } from "./ClusterErrors.js"
import { ClusterEventsLive, ClusterEvents } from "./events/EventRelay.js"
import { makeClusterJobQueue } from "./queue/ClusterJobQueue.js"
import { JobRunnerLive, relayRunnerEvents } from "./runner/JobRunner.js"
import { RunnerQueueLive } from "./runner/RunnerQueue.js"
import { SequenceRunnerLive } from "./runner/SequenceRunner.js"
import { migrateClusterTables } from "./storage/ClusterMigrations.js"
import { JobRowsLive } from "./storage/JobRows.js"
import { codeDigest, joinCluster } from "./storage/Membership.js"

/*
 * The job queue across several hosts: `JobQueueCluster` provides the same
 * JobQueue service as `JobQueueLive`, so a host switches with a Layer, not
 * with new code (issue 10, ADR 0033). With a runner address the process is a
 * runner: it verifies its plugins (the PluginManager it is given), joins only
 * if they match the cluster's, takes a share of the shards and runs the jobs
 * that fall in them. Without one it is a client: it submits, reads and
 * watches.
 */

export interface RunnerAddressOptions {
  readonly host: string
  readonly port: number
}

export interface ClusterClientOptions {
  /** postgres://… : the cluster's messages, shard locks, runners and job records. */
  readonly database: string
  /** Finished jobs `history` lists at most (default 100), and each event subscriber's buffer (default 100). */
  readonly queue?: Pick<JobQueueOptions, "maxHistory" | "subscriberBuffer">
}

export interface JobQueueClusterOptions {
  /** postgres://… : the cluster's messages, shard locks, runners and job records. */
  readonly database: string
  /** Where other runners reach this one. */
  readonly runner: RunnerAddressOptions
  /** Where this runner listens, when not at its address (behind NAT, 0.0.0.0). */
  readonly listen?: RunnerAddressOptions
  /** Each runner's own queue: concurrency, retries, cancel timeout, history, buffers. */
  readonly queue?: JobQueueOptions
  /** @effect/cluster's sharding settings over Plinth's defaults (FAILOVER_DEFAULTS). */
  readonly sharding?: Partial<ShardingConfig.ShardingConfig["Type"]>
}

/**
 * Shorter than @effect/cluster's own (35 s lock expiry, 10 s message poll):
 * a killed runner's jobs move within seconds. The price is a few more small
 * queries a second per runner (README, "Scaling out", measured).
 */
export const FAILOVER_DEFAULTS: Partial<ShardingConfig.ShardingConfig["Type"]> = {
  // Said here, not left to @effect/cluster's default: every runner must agree on it.
  shardsPerGroup: 300,
  shardLockExpiration: Duration.seconds(6),
  shardLockRefreshInterval: Duration.seconds(2),
  refreshAssignmentsInterval: Duration.seconds(1),
  entityMessagePollInterval: Duration.seconds(1),
  runnerHealthCheckInterval: Duration.seconds(2),
  entityTerminationTimeout: Duration.seconds(10),
}

/** The database URL as messages show it: without its password. */
export const displayDatabase = (database: string): string => {
  try {
    const url = new URL(database)
    if (url.password !== "") url.password = "***"
    return url.toString()
  } catch {
    return "(an unreadable URL)"
  }
}

/** A runner's address as people and the database read it: HOST:PORT, an IPv6 host in brackets. */
export const runnerName = (runner: RunnerAddressOptions) => (runner.host.includes(":") ? `[${runner.host}]:${runner.port}` : `${runner.host}:${runner.port}`)

const databaseLayers = (database: string, applicationName: string) => {
  const shown = displayDatabase(database)
  const unavailable = (error: { readonly message: string; readonly cause?: unknown }) =>
    new ClusterDatabaseUnavailable({
      database: shown,
      detail: error.cause instanceof Error ? error.cause.message : error.message,
    })
  // Named in pg_stat_activity, so an operator can tell which runner holds which connection (and which shard locks).
  const Sql = PgClient.layer({ url: Redacted.make(database), applicationName }).pipe(Layer.mapError(unavailable))
  const Tables = Layer.effectDiscard(Effect.mapError(migrateClusterTables, unavailable))
  const Shared = Layer.mergeAll(JobRowsLive, ClusterEventsLive).pipe(Layer.provideMerge(Tables), Layer.provideMerge(Sql))
  return { shown, unavailable, Shared }
}

/**
 * @effect/cluster's storage creates its tables with CREATE TABLE IF NOT EXISTS, which Postgres does not make safe
 * against itself: runners starting together on a fresh database can fail with a duplicate type. The loser tries again.
 */
const tablesRace = Schedule.spaced("200 millis").pipe(Schedule.compose(Schedule.recurs(10)))

/**
 * NodeClusterSocket.layer's parts, put together here with a ShardingConfig of
 * our own: that layer reads the rest of the config from the environment
 * (PORT, HOST, SHARDS_PER_GROUP, …), so a host's unrelated `PORT=3000`, or a
 * SHARDS_PER_GROUP set on one host only, would change or split the cluster.
 * Every field is given here; nothing comes from the environment.
 */
const shardingLayer = (options: {
  readonly runner?: RunnerAddressOptions
  readonly listen?: RunnerAddressOptions
  readonly sharding?: Partial<ShardingConfig.ShardingConfig["Type"]>
}) => {
  const config = ShardingConfig.layer({
    ...ShardingConfig.defaults,
    ...FAILOVER_DEFAULTS,
    ...options.sharding,
    runnerAddress: options.runner === undefined ? Option.none() : Option.some(RunnerAddress.make(options.runner.host, options.runner.port)),
    runnerListenAddress: options.listen === undefined ? Option.none() : Option.some(RunnerAddress.make(options.listen.host, options.listen.port)),
  })
  const runner =
    options.runner === undefined
      ? Layer.provide(SocketRunner.layerClientOnly, NodeClusterSocket.layerClientProtocol)
      : Layer.provide(SocketRunner.layer, [NodeClusterSocket.layerSocketServer, NodeClusterSocket.layerClientProtocol]).pipe(
          Layer.provide(RunnerHealth.layerPing.pipe(Layer.provide(Runners.layerRpc), Layer.provide(NodeClusterSocket.layerClientProtocol))),
        )
  return runner.pipe(
    Layer.provideMerge(Layer.orDie(Layer.retry(SqlMessageStorage.layer, tablesRace))),
    Layer.provide(Layer.orDie(Layer.retry(SqlRunnerStorage.layer, tablesRace))),
    Layer.provide(config),
    Layer.provide(RpcSerialization.layerMsgPack),
  )
}

/** A client of the cluster: submits, reads and watches jobs, runs none (no plugins needed here). */
export const JobQueueClusterClient = (options: ClusterClientOptions) => {
  const { Shared } = databaseLayers(options.database, "plinth client")
  return Layer.scoped(JobQueue, makeClusterJobQueue({ database: options.database, ...options.queue })).pipe(
    Layer.provide(shardingLayer({})),
    Layer.provide(Shared),
  )
}

/** A runner of the cluster over the PluginManager in context (which has verified the plugins), and its JobQueue. */
export const JobQueueCluster = (options: JobQueueClusterOptions) => {
  const runner = runnerName(options.runner)
  const { shown, unavailable, Shared } = databaseLayers(options.database, `plinth runner ${runner}`)
  const Queue = Layer.scoped(JobQueue, makeClusterJobQueue({ database: options.database, ...options.queue }))
  // Before any shard is taken: a runner with other code than the cluster's never gets a job.
  const Membership = Layer.scopedDiscard(
    Effect.gen(function* () {
      const manager = yield* PluginManager
      yield* Effect.catchTag(joinCluster(runner, codeDigest(manager.verifiedDigests)), "SqlError", (error) => Effect.fail(unavailable(error)))
    }),
  )
  const Runner = Layer.unwrapEffect(
    Effect.map(ClusterEvents, (sender) => Layer.mergeAll(JobRunnerLive({ runner, sender }), relayRunnerEvents(sender), SequenceRunnerLive({ sender }))),
  ).pipe(Layer.provide(RunnerQueueLive({ runner, database: shown, ...(options.queue !== undefined ? { queue: options.queue } : {}) })))
  return Runner.pipe(Layer.provideMerge(Queue), Layer.provide(shardingLayer(options)), Layer.provide(Membership), Layer.provide(Shared))
}
