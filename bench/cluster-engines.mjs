// The two cluster engines for issue 10's job queue, measured on this machine with a real Postgres (ADR 33):
//   (a) entity    a persisted entity per job (entity id = job id, primary key = job id), replies awaited;
//   (b) discard   the same messages sent with `discard: true`, completion seen as the handler's row;
//   (c) workflow  @effect/workflow over ClusterWorkflowEngine, one workflow with one activity per job.
// Throughput: one runner process and one client process per engine, a fresh database each, a no-op
// handler, `--concurrency` sends in flight, a warm-up round then `--rounds` rounds of `--jobs` (medians).
// Faults: two runners and a client; one runner is killed with SIGKILL while `--fault-jobs` jobs that each
// take `--fault-delay` ms run; lost jobs, jobs run twice and the failover time are read from the handler's
// rows, once with the default ShardingConfig and once tuned (ADR 33 has the figures and the configs).
//
//   node bench/cluster-engines.mjs [--engines entity,discard,workflow] [--jobs 1000] [--rounds 3]
//       [--concurrency 64] [--fault-jobs 200] [--fault-delay 1000] [--skip-throughput] [--skip-faults]
//       [--configs defaults,balanced] [--throughput-configs defaults,tuned] [--fault-repeats 1] [--out FILE] [--json]
import { spawn } from "node:child_process"
import { appendFileSync, readFileSync } from "node:fs"
import { createServer } from "node:net"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { loadavg } from "node:os"
import { PgClient } from "@effect/sql-pg"
import { Effect, ManagedRuntime, Redacted } from "effect"
import { startPostgres } from "../test/support/postgres.mjs"

const here = dirname(fileURLToPath(import.meta.url))
const nodeScript = join(here, "support", "cluster-engine-node.mjs")

const { values: args } = parseArgs({
  options: {
    engines: { type: "string", default: "entity,discard,workflow" },
    jobs: { type: "string", default: "1000" },
    rounds: { type: "string", default: "3" },
    concurrency: { type: "string", default: "64" },
    "fault-jobs": { type: "string", default: "200" },
    "fault-delay": { type: "string", default: "1000" },
    "kill-after": { type: "string", default: "40" },
    "fault-repeats": { type: "string", default: "1" },
    configs: { type: "string", default: "defaults,balanced" },
    "throughput-configs": { type: "string", default: "defaults,tuned" },
    "skip-throughput": { type: "boolean", default: false },
    "skip-faults": { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    out: { type: "string" },
  },
})
const engines = args.engines.split(",")
const jobs = Number(args.jobs)
const rounds = Number(args.rounds)
const concurrency = Number(args.concurrency)
const faultJobs = Number(args["fault-jobs"])
const faultDelay = Number(args["fault-delay"])
const killAfter = Number(args["kill-after"])

/** ShardingConfig overrides in milliseconds. `defaults` is @effect/cluster's own (35 s lock, 10 s poll). */
const tuned = {
  shardLockExpiration: 5_000,
  shardLockRefreshInterval: 1_000,
  entityMessagePollInterval: 1_000,
  refreshAssignmentsInterval: 1_000,
  runnerHealthCheckInterval: 2_000,
}
const configs = {
  defaults: {},
  tuned,
  // A client waiting for a persisted message's reply reads it from storage every entityReplyPollInterval
  // (200 ms by default); measured: not what bounds the throughput here (CPU does).
  reply20: { entityReplyPollInterval: 20 },
  // The lock refresh must answer within min(shardLockRefreshInterval, shardLockExpiration / 3), or the
  // runner takes its lock storage for unhealthy and interrupts every entity it runs: 1 s timed out under
  // load here, so this one allows 2 s.
  balanced: {
    shardLockExpiration: 6_000,
    shardLockRefreshInterval: 2_000,
    entityMessagePollInterval: 1_000,
    refreshAssignmentsInterval: 1_000,
    runnerHealthCheckInterval: 2_000,
  },
  // Tighter still: a runner silent for 3 s is taken for dead.
  tight: {
    shardLockExpiration: 3_000,
    shardLockRefreshInterval: 500,
    entityMessagePollInterval: 500,
    refreshAssignmentsInterval: 500,
    runnerHealthCheckInterval: 1_000,
  },
}

/** CPU time (ms) of a process, from /proc: utime + stime in clock ticks of 10 ms. */
const cpuMillis = (pid) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return 0
  }
}
/** CPU time of every process of the Postgres server (backends and background processes), by pid. */
const postgresCpu = async (db) => {
  const { rows } = await db.query("SELECT pid FROM pg_stat_activity")
  return new Map(rows.map((row) => [row.pid, cpuMillis(row.pid)]))
}

const log = (line) => process.stderr.write(`${line}\n`)
const now = () => performance.timeOrigin + performance.now()
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// Every child still running when the bench ends (a failed measurement) is killed with it.
const children = new Set()
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL")
})

/** A runner or client process; its JSON lines go to `onLine`, its stderr to ours (prefixed). */
const spawnNode = (options, onLine) => {
  // pg warns (DeprecationWarning) about queries @effect/sql-pg issues on a busy client: not ours to fix.
  const child = spawn(process.execPath, ["--no-deprecation", nodeScript, JSON.stringify(options)], {
    stdio: ["ignore", "pipe", "pipe"],
  })
  children.add(child)
  child.on("exit", () => children.delete(child))
  let buffer = ""
  child.stdout.on("data", (chunk) => {
    buffer += chunk
    let index
    while ((index = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, index)
      buffer = buffer.slice(index + 1)
      try {
        onLine(JSON.parse(line))
      } catch {
        log(`  [${options.runner ?? options.role}] ${line}`)
      }
    }
  })
  child.stderr.on("data", (chunk) => {
    for (const line of String(chunk).split("\n")) if (line.trim() !== "") log(`  [${options.runner ?? options.role}] ${line}`)
  })
  child.exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })))
  return child
}

const startRunner = (options) =>
  new Promise((resolve, reject) => {
    const child = spawnNode({ role: "runner", ...options }, (message) => {
      if (message.type === "ready") resolve(child)
      if (message.type === "error") reject(new Error(`runner ${options.runner}: ${message.message}`))
    })
    child.exited.then(({ code, signal }) => reject(new Error(`runner ${options.runner} exited (${code ?? signal})`)))
  })

const stopProcess = async (child) => {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill("SIGTERM")
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000)
  await child.exited
  clearTimeout(timer)
}

/** The bench's own connection to a database: `query(text)` → `{ rows }`, then `end()`. */
const connect = (url) => {
  const runtime = ManagedRuntime.make(PgClient.layer({ url: Redacted.make(url), maxConnections: 2 }))
  return {
    query: (text) =>
      runtime.runPromise(Effect.flatMap(PgClient.PgClient, (sql) => sql.unsafe(text))).then((rows) => ({ rows })),
    end: () => runtime.dispose(),
  }
}

const freshDatabase = async (server, name) => {
  const url = server.createDatabase(name)
  const client = connect(url)
  for (const table of ["bench_starts", "bench_done"])
    await client.query(
      `CREATE TABLE ${table} (job_id text NOT NULL, runner text NOT NULL, shard int NOT NULL, at double precision NOT NULL)`,
    )
  return { url, client }
}

/** A port free now, from the OS (a fixed range collides with other servers on the machine). */
const freePort = () =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })

const throughput = async (server, engine, configName) => {
  const sharding = configs[configName]
  const { url, client: db } = await freshDatabase(server, `throughput_${engine}_${configName}`)
  const runner = await startRunner({ engine, url, sharding, runner: "r1", port: await freePort() })
  const lines = []
  const cpu = {}
  const client = spawnNode(
    { role: "client", engine, url, sharding, mode: "throughput", jobs, rounds, concurrency, delayMs: 0 },
    (message) => {
      lines.push(message)
      if (message.type === "mark") {
        const at = message.at
        const cpuOfClient = (message.cpu.user + message.cpu.system) / 1000
        postgresCpu(db).then((pgCpu) => {
          cpu[at] = { runner: cpuMillis(runner.pid), client: cpuOfClient, postgres: pgCpu, time: now() }
        })
      }
      if (message.type === "round")
        log(
          `  ${engine}/${configName} round ${message.round}${message.warmup ? " (warm-up)" : ""}: ${message.jobsPerSecond.toFixed(0)} jobs/s, p50 ${message.p50.toFixed(0)} ms, p99 ${message.p99.toFixed(0)} ms, ${message.completed}/${message.jobs} completed, ${message.failures} failures`,
        )
      if (message.type === "error") log(`  ${engine} client: ${message.message}`)
    },
  )
  await client.exited
  await stopProcess(runner)
  await db.end()
  const measured = lines.filter((line) => line.type === "round" && !line.warmup)
  const before = lines.find((line) => line.type === "stats" && line.at === "before")?.tables ?? []
  const after = lines.find((line) => line.type === "stats" && line.at === "after")?.tables ?? []
  const measuredJobs = measured.reduce((sum, round) => sum + round.jobs, 0)
  const rowsPerJob = {}
  for (const table of after) {
    const base = before.find((row) => row.relname === table.relname) ?? { ins: 0, upd: 0, del: 0 }
    const delta = { ins: table.ins - base.ins, upd: table.upd - base.upd, del: table.del - base.del }
    if (delta.ins + delta.upd + delta.del === 0) continue
    rowsPerJob[table.relname] = {
      ins: delta.ins / measuredJobs,
      upd: delta.upd / measuredJobs,
      del: delta.del / measuredJobs,
    }
  }
  const clusterWrites = Object.entries(rowsPerJob)
    .filter(([name]) => name.startsWith("cluster_"))
    .reduce((sum, [, row]) => sum + row.ins + row.upd + row.del, 0)
  const measuredJobsCpu = (ms) => (ms * 1000) / measuredJobs
  let cpuPerJob = null
  if (cpu.start && cpu.end) {
    let postgres = 0
    for (const [pid, ms] of cpu.end.postgres) postgres += ms - (cpu.start.postgres.get(pid) ?? 0)
    const seconds = (cpu.end.time - cpu.start.time) / 1000
    cpuPerJob = {
      runnerMicros: measuredJobsCpu(cpu.end.runner - cpu.start.runner),
      clientMicros: measuredJobsCpu(cpu.end.client - cpu.start.client),
      postgresMicros: measuredJobsCpu(postgres),
      coresBusy: (cpu.end.runner - cpu.start.runner + cpu.end.client - cpu.start.client + postgres) / 1000 / seconds,
    }
  }
  return {
    engine,
    config: configName,
    sharding,
    cpuPerJob,
    rounds: measured.map(({ jobsPerSecond, p50, p99, completed, failures }) => ({ jobsPerSecond, p50, p99, completed, failures })),
    jobsPerSecond: median(measured.map((round) => round.jobsPerSecond)),
    p50: median(measured.map((round) => round.p50)),
    p99: median(measured.map((round) => round.p99)),
    lost: measured.reduce((sum, round) => sum + round.jobs - round.completed, 0),
    rowsPerJob,
    clusterWritesPerJob: clusterWrites,
  }
}

const fault = async (server, engine, configName, repeat) => {
  const sharding = configs[configName]
  const { url, client: db } = await freshDatabase(server, `fault_${engine}_${configName}_${repeat}`)
  const common = { engine, url, sharding, record: true }
  const r1 = await startRunner({ ...common, runner: "r1", port: await freePort() })
  const r2 = await startRunner({ ...common, runner: "r2", port: await freePort() })
  // Both runners must hold shards before the run: the second one's arrival moves half of them.
  const refresh = Math.max(sharding.refreshAssignmentsInterval ?? 3_000, 1_000)
  await sleep(refresh * 2 + 2_000)
  let report
  const client = spawnNode(
    {
      role: "client",
      engine,
      url,
      sharding,
      mode: "fault",
      jobs: faultJobs,
      concurrency,
      delayMs: faultDelay,
      timeoutMillis: 240_000,
      prefix: `fault-${configName}`,
    },
    (message) => {
      if (message.type === "fault") report = message
      if (message.type === "error") log(`  ${engine}/${configName} client: ${message.message}`)
    },
  )
  // Kill r2 once `killAfter` jobs have finished and it has jobs running.
  let killedAt
  for (;;) {
    const { rows } = await db.query(
      `SELECT (SELECT count(*)::int FROM bench_done) AS done,
              (SELECT count(*)::int FROM bench_starts s WHERE runner = 'r2'
                 AND NOT EXISTS (SELECT 1 FROM bench_done d WHERE d.job_id = s.job_id AND d.runner = 'r2')) AS running`,
    )
    if (rows[0].done >= killAfter && rows[0].running > 0) {
      r2.kill("SIGKILL")
      killedAt = now()
      log(`  ${engine}/${configName}: r2 killed with ${rows[0].running} of its jobs running, ${rows[0].done} done`)
      break
    }
    if (client.exitCode !== null) break
    await sleep(20)
  }
  await client.exited
  // Give stragglers (a discarded job is complete only when its row exists) the same bound as the client.
  const deadline = now() + 5_000
  while (now() < deadline) {
    const { rows } = await db.query(`SELECT count(DISTINCT job_id)::int AS n FROM bench_done`)
    if (rows[0].n >= faultJobs) break
    await sleep(100)
  }
  await stopProcess(r1)
  await stopProcess(r2)
  const { rows: starts } = await db.query(`SELECT job_id, runner, shard, at FROM bench_starts`)
  const { rows: done } = await db.query(`SELECT job_id, runner, shard, at FROM bench_done`)
  await db.end()
  const count = (rows) => {
    const counts = new Map()
    for (const row of rows) counts.set(row.job_id, (counts.get(row.job_id) ?? 0) + 1)
    return counts
  }
  const startCounts = count(starts)
  const doneCounts = count(done)
  const doneBy = new Map(done.map((row) => [`${row.job_id}/${row.runner}`, row]))
  // The killed runner's jobs: started on r2 before the kill and not finished there.
  const inFlight = starts.filter((row) => row.runner === "r2" && !doneBy.has(`${row.job_id}/r2`))
  // A job that finished on r2 and ran again elsewhere: how long before the kill had it finished?
  const twice = [...doneCounts].filter(([, n]) => n > 1).map(([id]) => id)
  const finishedBeforeKill = twice
    .map((id) => doneBy.get(`${id}/r2`))
    .filter(Boolean)
    .map((row) => killedAt - row.at)
    .sort((a, b) => a - b)
  const killedShards = new Set(starts.filter((row) => row.runner === "r2").map((row) => row.shard))
  const recovered = inFlight.map((row) => done.find((d) => d.job_id === row.job_id && d.runner !== "r2")).filter(Boolean)
  const firstTakeover = starts
    .filter((row) => row.runner !== "r2" && row.at > killedAt && killedShards.has(row.shard))
    .reduce((min, row) => Math.min(min, row.at), Infinity)
  const result = {
    engine,
    config: configName,
    sharding,
    jobs: faultJobs,
    killed: killedAt !== undefined,
    inFlightOnKilled: inFlight.length,
    lost: faultJobs - doneCounts.size,
    clientReplies: report?.replies ?? 0,
    clientFailures: report?.failures ?? 0,
    clientFailureSample: report?.failureSample ?? [],
    startedTwice: [...startCounts.values()].filter((n) => n > 1).length,
    completedTwice: [...doneCounts.values()].filter((n) => n > 1).length,
    completedTwiceNotOnKilled: twice.filter((id) => !doneBy.has(`${id}/r2`)).length,
    recoveredInFlight: recovered.length,
    completedTwiceFinishedBeforeKillMillis: finishedBeforeKill.length > 0 ? { min: finishedBeforeKill[0], max: finishedBeforeKill.at(-1) } : null,
    firstTakeoverSeconds: killedAt !== undefined && Number.isFinite(firstTakeover) ? (firstTakeover - killedAt) / 1000 : null,
    inFlightDoneSeconds:
      killedAt !== undefined && recovered.length > 0
        ? (Math.max(...recovered.map((row) => row.at)) - killedAt) / 1000
        : null,
    runSeconds: report ? report.summary.seconds : null,
  }
  log(
    `  ${engine}/${configName}: lost ${result.lost}, started twice ${result.startedTwice}, completed twice ${result.completedTwice}, in flight on r2 ${result.inFlightOnKilled} (recovered ${result.recoveredInFlight}), first takeover ${result.firstTakeoverSeconds?.toFixed(1)} s, in-flight done ${result.inFlightDoneSeconds?.toFixed(1)} s, run ${result.runSeconds?.toFixed(1)} s`,
  )
  return result
}

const server = await startPostgres()
const results = { throughput: [], faults: [] }
try {
  // Each result is kept (and appended to --out as one JSON line) as soon as it is measured: one failed
  // measurement is reported and the others go on.
  const keep = async (list, kind, measure) => {
    try {
      const result = await measure()
      list.push(result)
      if (args.out !== undefined) appendFileSync(args.out, `${JSON.stringify({ kind, loadAverage: loadavg(), ...result })}\n`)
    } catch (error) {
      log(`  ${kind} failed: ${error instanceof Error ? error.message : String(error)}`)
    }
    for (const child of children) await stopProcess(child)
  }
  if (!args["skip-throughput"]) {
    log(`throughput: ${jobs} jobs per round, ${rounds} rounds after a warm-up, ${concurrency} in flight, 1 runner`)
    for (const configName of args["throughput-configs"].split(","))
      for (const engine of engines)
        await keep(results.throughput, "throughput", () => throughput(server, engine, configName))
  }
  if (!args["skip-faults"]) {
    log(`faults: ${faultJobs} jobs of ${faultDelay} ms, 2 runners, SIGKILL of one after ${killAfter} jobs done`)
    for (let repeat = 0; repeat < Number(args["fault-repeats"]); repeat++)
      for (const configName of args.configs.split(","))
        for (const engine of engines)
          await keep(results.faults, "fault", () => fault(server, engine, configName, repeat))
  }
} finally {
  server.stop()
}

if (args.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`)
else {
  for (const row of results.throughput)
    console.log(
      `${row.engine.padEnd(9)} ${row.config.padEnd(9)} ${row.jobsPerSecond.toFixed(0).padStart(6)} jobs/s  p50 ${row.p50.toFixed(0)} ms  p99 ${row.p99.toFixed(0)} ms  lost ${row.lost}  cluster rows/job ${row.clusterWritesPerJob.toFixed(2)}  CPU µs/job ${JSON.stringify(row.cpuPerJob)}`,
    )
  for (const row of results.faults)
    console.log(
      `${row.engine.padEnd(9)} ${row.config.padEnd(8)} lost ${row.lost}  replies ${row.clientReplies}/${row.jobs}  started twice ${row.startedTwice}  completed twice ${row.completedTwice}  in flight on killed ${row.inFlightOnKilled}  first takeover ${row.firstTakeoverSeconds?.toFixed(1)} s  in-flight done ${row.inFlightDoneSeconds?.toFixed(1)} s  run ${row.runSeconds?.toFixed(1)} s  completed twice finished before kill ${JSON.stringify(row.completedTwiceFinishedBeforeKillMillis)} ms`,
    )
}
process.exit(0)
