// One process of `bench/cluster-engines.mjs`: a runner or a client of @effect/cluster over Postgres.
//
//   node bench/support/cluster-engine-node.mjs '<options JSON>'
//
// options: { role: "runner" | "client", engine: "entity" | "discard" | "workflow", url, runner?, port?,
//            sharding?: { <ShardingConfig duration field>: millis }, record?: boolean,
//            mode?: "throughput" | "fault", jobs?, rounds?, concurrency?, delayMs?, timeoutMillis?, prefix? }
//
// The runner prints `{"type":"ready"}` once its Sharding service is up; the client prints one JSON line per
// round (`{"type":"round", ...}`) or per fault run (`{"type":"fault", ...}`), then `{"type":"done"}`.
// The job handler is a no-op (the engine is measured, not a plugin): it records rows only where completion
// must be observed from outside (engine "discard", and every engine with `record`, the fault runs).
import { ClusterSchema, ClusterWorkflowEngine, Entity, RunnerAddress, Sharding } from "@effect/cluster"
import { EntityId } from "@effect/cluster/EntityId"
import { NodeClusterSocket } from "@effect/platform-node"
import { Rpc } from "@effect/rpc"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Activity, Workflow, WorkflowEngine } from "@effect/workflow"
import { Duration, Effect, Layer, Logger, LogLevel, Option, Redacted, Schema } from "effect"

const options = JSON.parse(process.argv[2] ?? "{}")
const now = () => performance.timeOrigin + performance.now()
const print = (value) => process.stdout.write(`${JSON.stringify(value)}\n`)

const shardingConfig = Object.fromEntries(
  Object.entries(options.sharding ?? {}).map(([key, millis]) => [key, Duration.millis(millis)]),
)

const Payload = { id: Schema.String, delayMs: Schema.Number }
const Done = Schema.Struct({ id: Schema.String, runner: Schema.String })

// (a), (b): one persisted entity per job, entity id = job id, primary key = job id.
const Run = Rpc.make("Run", { payload: Payload, success: Done, primaryKey: (p) => p.id }).annotate(
  ClusterSchema.Persisted,
  true,
)
const JobEntity = Entity.make("BenchJob", [Run])

// (c): one workflow per job, one activity.
const JobWorkflow = Workflow.make({ name: "BenchJob", payload: Payload, success: Done, idempotencyKey: (p) => p.id })

const runnerName = options.runner ?? "client"

/** The job's work: nothing, or (recorded) a start row, `delayMs` of sleep, a done row. */
const work = (payload, shard) =>
  Effect.gen(function* () {
    const recordStart = options.record === true
    const recordDone = recordStart || options.engine === "discard"
    if (recordStart || recordDone) {
      const sql = yield* SqlClient.SqlClient
      if (recordStart)
        yield* sql`INSERT INTO bench_starts ${sql.insert({ job_id: payload.id, runner: runnerName, shard, at: now() })}`
      if (payload.delayMs > 0) yield* Effect.sleep(Duration.millis(payload.delayMs))
      yield* sql`INSERT INTO bench_done ${sql.insert({ job_id: payload.id, runner: runnerName, shard, at: now() })}`
    } else if (payload.delayMs > 0) yield* Effect.sleep(Duration.millis(payload.delayMs))
    return { id: payload.id, runner: runnerName }
  }).pipe(Effect.orDie)

const EntityHandlers = JobEntity.toLayer(
  Effect.gen(function* () {
    const address = yield* Entity.CurrentAddress
    return { Run: (request) => work(request.payload, address.shardId.id) }
  }),
  { concurrency: "unbounded" },
)

const WorkflowHandlers = Layer.unwrapEffect(
  Effect.map(Sharding.Sharding, (sharding) =>
    JobWorkflow.toLayer((payload, executionId) =>
      Activity.make({
        name: "run",
        success: Done,
        execute: work(payload, sharding.getShardId(EntityId.make(executionId), "default").id),
      }),
    ),
  ),
)

const Pg = PgClient.layer({ url: Redacted.make(options.url), maxConnections: 16 })

const ClusterLive = (clientOnly) =>
  NodeClusterSocket.layer({
    storage: "sql",
    clientOnly,
    shardingConfig: {
      ...(clientOnly ? {} : { runnerAddress: Option.some(RunnerAddress.make("127.0.0.1", options.port)) }),
      ...shardingConfig,
    },
  })

const Quiet = Logger.minimumLogLevel(LogLevel.Error)

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]

const runner = () => {
  const Handlers =
    options.engine === "workflow"
      ? WorkflowHandlers.pipe(Layer.provide(ClusterWorkflowEngine.layer))
      : EntityHandlers
  const Live = Handlers.pipe(Layer.provideMerge(ClusterLive(false)), Layer.provideMerge(Pg), Layer.provide(Quiet))
  return Effect.gen(function* () {
    yield* Sharding.Sharding
    print({ type: "ready", runner: runnerName, pid: process.pid })
    return yield* Effect.never
  }).pipe(Effect.provide(Live))
}

/** Sends the round's jobs, `concurrency` at a time; returns each job's submit and result times. */
const sendAll = (ids, delayMs) =>
  Effect.gen(function* () {
    const submitted = new Map()
    const finished = new Map()
    const failures = []
    const onResult = (id) => (effect) =>
      effect.pipe(
        Effect.tap(() => Effect.sync(() => finished.set(id, now()))),
        Effect.catchAllCause((cause) => Effect.sync(() => failures.push({ id, cause: String(cause).slice(0, 300) }))),
        Effect.timeoutOption(Duration.millis(options.timeoutMillis ?? 300_000)),
      )
    if (options.engine === "workflow") {
      yield* Effect.forEach(
        ids,
        (id) =>
          Effect.suspend(() => {
            submitted.set(id, now())
            return JobWorkflow.execute({ id, delayMs })
          }).pipe(onResult(id)),
        { concurrency: options.concurrency ?? 64, discard: true },
      )
      return { submitted, finished, failures }
    }
    const client = yield* JobEntity.client
    if (options.engine === "entity") {
      yield* Effect.forEach(
        ids,
        (id) =>
          Effect.suspend(() => {
            submitted.set(id, now())
            return client(id).Run({ id, delayMs })
          }).pipe(onResult(id)),
        { concurrency: options.concurrency ?? 64, discard: true },
      )
      return { submitted, finished, failures }
    }
    // discard: the send returns once the message is stored; completion is the handler's row.
    const sql = yield* SqlClient.SqlClient
    yield* Effect.forEach(
      ids,
      (id) =>
        Effect.suspend(() => {
          submitted.set(id, now())
          return client(id).Run({ id, delayMs }, { discard: true })
        }).pipe(Effect.catchAllCause((cause) => Effect.sync(() => failures.push({ id, cause: String(cause).slice(0, 300) })))),
      { concurrency: options.concurrency ?? 64, discard: true },
    )
    const prefix = `${ids[0].split(":")[0]}:%`
    const deadline = now() + (options.timeoutMillis ?? 300_000)
    for (;;) {
      const rows = yield* sql`SELECT count(DISTINCT job_id)::int AS n FROM bench_done WHERE job_id LIKE ${prefix}`
      if (rows[0].n >= ids.length || now() > deadline) break
      yield* Effect.sleep(Duration.millis(10))
    }
    const rows = yield* sql`SELECT job_id, min(at) AS at FROM bench_done WHERE job_id LIKE ${prefix} GROUP BY job_id`
    for (const row of rows) finished.set(row.job_id, Number(row.at))
    return { submitted, finished, failures }
  })

const summarize = (round, ids, started, { submitted, finished, failures }) => {
  const latencies = ids
    .filter((id) => finished.has(id))
    .map((id) => finished.get(id) - submitted.get(id))
    .sort((a, b) => a - b)
  const last = Math.max(...ids.map((id) => finished.get(id) ?? 0))
  return {
    round,
    jobs: ids.length,
    completed: latencies.length,
    failures: failures.length,
    failureSample: failures.slice(0, 3),
    seconds: (last - started) / 1000,
    jobsPerSecond: latencies.length / ((last - started) / 1000),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  }
}

const tableStats = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  return yield* sql`SELECT relname, n_tup_ins::int AS ins, n_tup_upd::int AS upd, n_tup_del::int AS del FROM pg_stat_user_tables ORDER BY relname`
})

const client = () => {
  const Base =
    options.engine === "workflow"
      ? ClusterWorkflowEngine.layer.pipe(Layer.provideMerge(ClusterLive(true)))
      : ClusterLive(true)
  const Live = Base.pipe(Layer.provideMerge(Pg), Layer.provide(Quiet))
  const tag = options.prefix ?? `${process.pid}`
  const idsFor = (round) => Array.from({ length: options.jobs ?? 1000 }, (_, i) => `${tag}-${round}:${i}`)
  const program = Effect.gen(function* () {
    if (options.mode === "fault") {
      const ids = idsFor("fault")
      const started = now()
      const outcome = yield* sendAll(ids, options.delayMs ?? 0)
      print({
        type: "fault",
        startedAt: started,
        replies: outcome.finished.size,
        failures: outcome.failures.length,
        failureSample: outcome.failures.slice(0, 3),
        summary: summarize("fault", ids, started, outcome),
      })
      return
    }
    const rounds = options.rounds ?? 3
    for (let round = 0; round <= rounds; round++) {
      // Stats are flushed by each Postgres backend at most once a second while busy, and within 10 s when
      // idle: wait 11 s around the measured rounds so that the counters include them.
      if (round === 1) {
        yield* Effect.sleep("11 seconds")
        print({ type: "stats", at: "before", tables: yield* tableStats })
        print({ type: "mark", at: "start", cpu: process.cpuUsage() })
      }
      const ids = idsFor(round)
      const started = now()
      const outcome = yield* sendAll(ids, options.delayMs ?? 0)
      print({ type: "round", warmup: round === 0, ...summarize(round, ids, started, outcome) })
    }
    print({ type: "mark", at: "end", cpu: process.cpuUsage() })
    yield* Effect.sleep("11 seconds")
    print({ type: "stats", at: "after", tables: yield* tableStats })
  })
  return program.pipe(Effect.provide(Live))
}

const main = options.role === "runner" ? runner() : client()
Effect.runPromise(Effect.scoped(main)).then(
  () => {
    print({ type: "done" })
    process.exit(0)
  },
  (error) => {
    print({ type: "error", message: String(error).slice(0, 2000) })
    process.exit(1)
  },
)
