// The job queue's throughput (issue 9 §7), in one run, side by side:
//   - piscina (a worker-thread pool, no queue semantics) running the same no-op, `cores` threads;
//   - no-op jobs through the JobQueue and a worker process, concurrency = cores, no journal;
//   - the same with the journal on (the stores' SQLite database);
//   - the same (no journal) with ten event subscribers reading every event, against none.
// Rounds alternate between the queue variants; medians are reported with each baseline's own figure.
// Standalone: `node bench/queue.mjs [--rounds N] [--jobs N]` (after `npm run build`).
import { availableParallelism, tmpdir } from "node:os"
import { mkdtempSync, rmSync } from "node:fs"
import { dirname, join } from "node:path"
import { parseArgs } from "node:util"
import { fileURLToPath, pathToFileURL } from "node:url"
import { Effect, Fiber, Layer, Stream } from "effect"
import { Piscina } from "piscina"
import {
  DatabaseLive,
  EmpiricalStoreLive,
  JobJournalLive,
  JobQueue,
  JobQueueLive,
  PlinthLive,
  PluginManager,
  PluginManagerLive,
} from "@plinth/runtime"
import { echoPluginRoot } from "./support/echoPlugin.mjs"

const here = dirname(fileURLToPath(import.meta.url))
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

const piscinaRate = async (pool, total) => {
  const started = performance.now()
  const inFlight = new Set()
  for (let i = 0; i < total; i++) {
    const task = pool.run({ text: "hi" })
    inFlight.add(task)
    task.then(() => inFlight.delete(task))
    if (inFlight.size >= 256) await Promise.race(inFlight)
  }
  await Promise.all(inFlight)
  return total / ((performance.now() - started) / 1000)
}

/** Jobs per second from the first submit to the last job finished; `subscribers` readers of every event meanwhile. */
const queueRate = (total, subscribers) =>
  Effect.gen(function* () {
    const queue = yield* JobQueue
    const readers = yield* Effect.forEach(Array.from({ length: subscribers }), () =>
      Effect.fork(Stream.runDrain(queue.allEvents)),
    )
    const started = performance.now()
    const ids = yield* Effect.forEach(Array.from({ length: total }), () => queue.submit({ instance: "echo", action: "echo", input: { text: "hi" } }), {
      concurrency: 64,
    })
    // The jobs are awaited one after another, in one fiber, as a host awaits a batch it submitted: awaiting
    // them all at once forked a fiber per job up front (5,000 parked fibers, each woken at its job's end),
    // which measured Effect's fibers more than the queue, and is no host's way of waiting for a batch.
    yield* Effect.forEach(ids, (id) => queue.wait(id), { discard: true })
    const rate = total / ((performance.now() - started) / 1000)
    yield* Effect.forEach(readers, Fiber.interrupt, { discard: true })
    return rate
  })

export async function runQueueBench({ rounds = 5, jobs = 5000, log = console.log } = {}) {
  const warmUp = jobs
  const cores = availableParallelism()
  const dir = mkdtempSync(join(tmpdir(), "plinth-bench-queue-"))
  const pool = new Piscina({ filename: pathToFileURL(join(here, "support", "noop-task.mjs")).href, maxThreads: cores, minThreads: cores })
  try {
    const { root, lock } = await echoPluginRoot(dir)
    // The manager records each call's cost in a real SQLite EmpiricalStore in both variants; only the journal differs.
    const hostLayer = (name) => {
      const stores = EmpiricalStoreLive().pipe(Layer.provideMerge(DatabaseLive({ dataDir: join(dir, name) })))
      return PluginManagerLive({ root, lock, dataRoot: join(dir, name, "data") }).pipe(Layer.provideMerge(Layer.merge(PlinthLive, stores)))
    }
    const plain = JobQueueLive({ concurrency: cores, journal: false }).pipe(Layer.provideMerge(hostLayer("plain")))
    const journaled = JobQueueLive({ concurrency: cores }).pipe(
      Layer.provideMerge(Layer.provideMerge(JobJournalLive(), hostLayer("journaled"))),
    )
    const inQueue = (layer, body) =>
      Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const manager = yield* PluginManager
            yield* manager.load("echo")
            // Each round starts a fresh host and worker: a round's worth of jobs first, so that both have been
            // compiled by V8's optimizing tier, as in a host that has been running (piscina's pool is warmed too).
            // With 500 warm-up jobs the first measured batch ran at about two thirds of the next ones' rate.
            yield* queueRate(warmUp, 0)
            return yield* body
          }),
        ).pipe(Effect.provide(layer)),
      )
    await piscinaRate(pool, 2000)
    const piscinaRounds = [], plainRounds = [], journalRounds = [], subscribedRounds = []
    for (let round = 0; round < rounds; round++) {
      piscinaRounds.push(await piscinaRate(pool, jobs * 4))
      await inQueue(
        plain,
        Effect.gen(function* () {
          // Alternating order, so that neither variant always runs second.
          if (round % 2 === 0) {
            plainRounds.push(yield* queueRate(jobs, 0))
            subscribedRounds.push(yield* queueRate(jobs, 10))
          } else {
            subscribedRounds.push(yield* queueRate(jobs, 10))
            plainRounds.push(yield* queueRate(jobs, 0))
          }
        }),
      )
      journalRounds.push(await inQueue(journaled, queueRate(jobs, 0)))
    }
    const result = {
      cores,
      piscina: median(piscinaRounds),
      queue: median(plainRounds),
      journaled: median(journalRounds),
      subscribed: median(subscribedRounds),
    }
    const rows = [
      { target: `no-op jobs, concurrency ${cores}, no journal >= 10,000/s`, measured: `${Math.round(result.queue)}/s`, limit: 10000, met: result.queue >= 10000 },
      { target: "the same with the journal on >= 5,000/s", measured: `${Math.round(result.journaled)}/s`, limit: 5000, met: result.journaled >= 5000 },
      {
        target: "ten event subscribers slow the queue by < 10%",
        measured: `${Math.round(result.subscribed)}/s vs ${Math.round(result.queue)}/s`,
        ratio: Math.round((result.subscribed / result.queue) * 100) / 100,
        limit: 0.9,
        met: result.subscribed / result.queue > 0.9,
      },
    ]
    log(`queue benchmark (median of ${rounds} rounds of ${jobs} jobs, ${cores} cores):`)
    for (const row of rows) log(`  ${row.target}: ${row.measured}${row.ratio !== undefined ? `  ratio ${row.ratio}` : ""}  ${row.met ? "met" : "MISSED"}`)
    log(`  side by side: piscina, ${cores} threads, the same no-op: ${Math.round(result.piscina)} tasks/s (queue at ${(result.queue / result.piscina).toFixed(2)}x)`)
    return { ...result, rows }
  } finally {
    await pool.destroy()
    rmSync(dir, { recursive: true, force: true })
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { values } = parseArgs({ options: { rounds: { type: "string", default: "5" }, jobs: { type: "string", default: "5000" } } })
  runQueueBench({ rounds: Number(values.rounds), jobs: Number(values.jobs) }).then(
    () => process.exit(0),
    (error) => {
      console.error(error)
      process.exit(1)
    },
  )
}
