// The cluster's job queue (issue 10 §6), in one run, against a real Postgres started here:
//   - no-op jobs through the single-host JobQueue (journal on, concurrency 4, in this process): the baseline;
//   - the same jobs through the cluster with 1, 2 and 3 runner processes (concurrency 4 each), submitted
//     and awaited by a client in this process, 64 in flight;
//   - the jobs go round-robin to four instances of the plugin: the cluster shards by instance, so that is
//     what it can spread over runners (one instance's jobs all run on one runner);
//   - failover: three runners; `kill -9` of one that is running jobs, then the time until the last of
//     its interrupted jobs started again on another runner; repeated, the killed runner restarted each time.
// Standalone: `node bench/cluster.mjs [--rounds N] [--jobs N] [--kills N]` (after `npm run build`).
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath, pathToFileURL } from "node:url"
import { parseArgs } from "node:util"
import { Effect, Layer } from "effect"
import { JobQueueClusterClient } from "@plinth/cluster"
import { JobQueue, JobQueueLive, PlinthHost, PluginManager } from "@plinth/runtime"
import { startPostgres } from "../test/support/postgres.mjs"
import { echoPluginRoot } from "./support/echoPlugin.mjs"

const here = dirname(fileURLToPath(import.meta.url))
const runnerScript = join(here, "..", "test", "support", "clusterRunner.mjs")
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const CONCURRENCY = 4
const IN_FLIGHT = 64
const INSTANCES = ["echo", "echo-2", "echo-3", "echo-4"]

const startRunner = (root, lock, database, port) => {
  const child = spawn(process.execPath, [runnerScript, root, lock, mkdtempSync(join(tmpdir(), "plinth-bench-runner-")), database, String(port), String(CONCURRENCY), INSTANCES.map((id) => (id === "echo" ? id : `echo:${id}`)).join(",")], {
    stdio: ["ignore", "pipe", "ignore"],
  })
  const ready = new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (line.startsWith("ready ")) resolve()
      if (line.startsWith("refused ")) reject(new Error(line))
    })
    child.on("close", (code) => reject(new Error(`runner ${port} exited with ${code}`)))
  })
  ready.catch(() => undefined)
  const exited = new Promise((resolve) => child.on("close", resolve))
  return { port, child, ready, exited, name: `127.0.0.1:${port}` }
}

/** Jobs per second for `jobs` no-op jobs, IN_FLIGHT submitted at once, each awaited. */
const rate = (jobs) =>
  Effect.gen(function* () {
    const queue = yield* JobQueue
    const started = performance.now()
    yield* Effect.forEach(
      Array.from({ length: jobs }, (_, i) => i),
      (i) => Effect.flatMap(queue.submit({ instance: INSTANCES[i % INSTANCES.length], action: "echo", input: { text: `t${i}` } }), queue.wait),
      { concurrency: IN_FLIGHT, discard: true },
    )
    return jobs / ((performance.now() - started) / 1000)
  })

const rounds = (layer, count, jobs) =>
  Effect.runPromise(
    Effect.gen(function* () {
      yield* rate(Math.min(200, jobs))
      const rates = []
      for (let i = 0; i < count; i++) rates.push(yield* rate(jobs))
      return rates
    }).pipe(Effect.provide(layer), Effect.scoped),
  )

export const runClusterBench = async ({ rounds: roundCount = 3, jobs = 1000, kills = 10, log = console.log } = {}) => {
  const dir = mkdtempSync(join(tmpdir(), "plinth-bench-cluster-"))
  const pg = await startPostgres()
  let nextPort = 39_000 + Math.floor(Math.random() * 10_000)
  const live = []
  try {
    const { root, lock } = await echoPluginRoot(dir)
    log(`cluster: ${jobs} no-op jobs per round, ${IN_FLIGHT} in flight, median of ${roundCount} rounds after a warm-up; runners with concurrency ${CONCURRENCY}`)

    const host = PlinthHost({ root, lock, dataDir: join(dir, "single") })
    const loaded = Layer.effectDiscard(
      Effect.flatMap(PluginManager, (m) => Effect.forEach(INSTANCES, (id) => m.load("echo", id === "echo" ? {} : { instanceId: id }))),
    ).pipe(Layer.provideMerge(host))
    const single = median(await rounds(JobQueueLive({ concurrency: CONCURRENCY }).pipe(Layer.provide(loaded)), roundCount, jobs))
    log(`cluster: single-host queue (journal on), the baseline: ${single.toFixed(0)} jobs/s`)

    const throughput = {}
    for (const count of [1, 2, 3]) {
      const database = pg.createDatabase(`bench_${count}`)
      const runners = Array.from({ length: count }, () => startRunner(root, lock, database, nextPort++))
      live.push(...runners)
      await Promise.all(runners.map((r) => r.ready))
      const perSecond = median(await rounds(JobQueueClusterClient({ database }), roundCount, jobs))
      throughput[count] = perSecond
      log(
        `cluster: ${count} runner${count === 1 ? "" : "s"}: ${perSecond.toFixed(0)} jobs/s (${(perSecond / single).toFixed(3)}× the single host; ${((1000 / perSecond) * 1000).toFixed(0)} µs per job against ${((1000 / single) * 1000).toFixed(0)} µs)`,
      )
      for (const r of runners) r.child.kill("SIGTERM")
      await Promise.all(runners.map((r) => r.exited))
    }

    const failovers = kills > 0 ? await failover(pg, root, lock, kills, () => nextPort++, live, log) : []
    return { jobs, rounds: roundCount, singleHostJobsPerSecond: single, clusterJobsPerSecond: throughput, failoverMillis: failovers }
  } finally {
    for (const r of live) r.child.kill("SIGKILL")
    pg.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

const failover = async (pg, root, lock, kills, port, live, log) => {
  const database = pg.createDatabase("bench_failover")
  const runners = [0, 1, 2].map(() => startRunner(root, lock, database, port()))
  live.push(...runners)
  await Promise.all(runners.map((r) => r.ready))
  const { execFileSync } = await import("node:child_process")
  const psql = (statement) => execFileSync("psql", ["-At", database, "-c", statement], { encoding: "utf8" }).trim()
  const times = []
  await Effect.runPromise(
    Effect.gen(function* () {
      const queue = yield* JobQueue
      for (let k = 0; k < kills; k++) {
        const ids = yield* Effect.forEach(Array.from({ length: 24 }, (_, i) => i), (i) =>
          queue.submit({ instance: INSTANCES[i % INSTANCES.length], action: "pause", input: { millis: 400 }, idempotencyKey: `kill${k}-${i}` }),
        )
        // A runner with jobs running, as the database says.
        let victim
        while (victim === undefined) {
          const busy = psql(`SELECT runner FROM plinth_jobs WHERE status = 'running' AND id IN (${ids.map((id) => `'${id}'`).join(",")}) LIMIT 1`)
          victim = runners.find((r) => r.name === busy)
          if (victim === undefined) yield* Effect.sleep("20 millis")
        }
        const interrupted = psql(`SELECT id FROM plinth_jobs WHERE status = 'running' AND runner = '${victim.name}'`).split("\n").filter(Boolean)
        const killedAt = Date.now()
        victim.child.kill("SIGKILL")
        const done = yield* Effect.forEach(ids, queue.wait, { concurrency: "unbounded" })
        const restarted = done.filter((job) => interrupted.includes(job.id) && job.startedAt > killedAt)
        if (restarted.length > 0) {
          const millis = Math.max(...restarted.map((job) => job.startedAt - killedAt))
          times.push(millis)
          log(`cluster: kill ${k + 1}/${kills}: ${restarted.length} interrupted jobs running again elsewhere within ${millis} ms`)
        }
        yield* Effect.promise(() => victim.exited)
        const again = startRunner(root, lock, database, victim.port)
        live.push(again)
        runners[runners.indexOf(victim)] = again
        yield* Effect.promise(() => again.ready)
      }
    }).pipe(Effect.provide(JobQueueClusterClient({ database })), Effect.scoped),
  )
  const sorted = [...times].sort((a, b) => a - b)
  if (sorted.length > 0) {
    log(`cluster: failover over ${sorted.length} kills: min ${sorted[0]} ms, median ${median(sorted)} ms, max ${sorted.at(-1)} ms`)
  }
  for (const r of runners) r.child.kill("SIGTERM")
  await Promise.all(runners.map((r) => r.exited))
  return sorted
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { rounds: { type: "string", default: "3" }, jobs: { type: "string", default: "1000" }, kills: { type: "string", default: "10" } } })
  await runClusterBench({ rounds: Number(values.rounds), jobs: Number(values.jobs), kills: Number(values.kills) })
  process.exit(0)
}
