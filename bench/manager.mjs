// The PluginManager's cost on the call path: `manager.execute` with 64 calls in flight against calling
// the bare instance (`startInstance`) the same way, in the same run, alternating rounds; medians.
// The manager's calls go through all its guards and record a sample per call into a real SQLite
// EmpiricalStore (queued, written in batches off the call's path).
// Standalone: `node bench/manager.mjs [--rounds N] [--calls N]` (after `npm run build`).
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { pathToFileURL } from "node:url"
import { Effect, Layer } from "effect"
import {
  DatabaseLive,
  EmpiricalStore,
  EmpiricalStoreLive,
  PlinthLive,
  PluginManager,
  PluginManagerLive,
  startInstance,
} from "@plinth/runtime"
import { echoPluginRoot } from "./support/echoPlugin.mjs"

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

/**
 * Calls per second with `inFlight` calls running at once, `total` in all, and
 * this process's CPU per call in µs (less sensitive to a busy machine than time).
 */
const throughput = (call, total, inFlight) =>
  Effect.gen(function* () {
    const started = performance.now()
    const cpu = process.cpuUsage()
    yield* Effect.forEach(Array.from({ length: total }), () => call({ text: "hi" }), { concurrency: inFlight, discard: true })
    const used = process.cpuUsage(cpu)
    return { perSecond: total / ((performance.now() - started) / 1000), cpuUs: (used.user + used.system) / total }
  })

export async function runManagerBench({ rounds = 7, calls = 10000, inFlight = 64, log = console.log } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "plinth-bench-manager-"))
  try {
    const { root, lock, plugin, locked } = await echoPluginRoot(dir)

    const stores = EmpiricalStoreLive().pipe(Layer.provideMerge(DatabaseLive({ dataDir: join(dir, "data") })))
    const live = PluginManagerLive({ root, lock, dataRoot: join(dir, "data") }).pipe(Layer.provideMerge(Layer.merge(PlinthLive, stores)))

    const results = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const manager = yield* PluginManager
          const instance = yield* startInstance({ plugin, locked })
          const loaded = yield* manager.load("echo")
          const bareCall = (input) => instance.invoke("echo", input)
          const managerCall = (input) => manager.execute(loaded.id, "echo", input)
          yield* throughput(bareCall, 500, inFlight)
          yield* throughput(managerCall, 500, inFlight)
          const bareRounds = [], managerRounds = []
          // Alternating, and in swapped order every other round, so that neither side always runs second.
          for (let round = 0; round < rounds; round++) {
            if (round % 2 === 0) {
              bareRounds.push(yield* throughput(bareCall, calls, inFlight))
              managerRounds.push(yield* throughput(managerCall, calls, inFlight))
            } else {
              managerRounds.push(yield* throughput(managerCall, calls, inFlight))
              bareRounds.push(yield* throughput(bareCall, calls, inFlight))
            }
          }
          // Every call the manager made is in the store once the queue is written.
          const flushStarted = performance.now()
          const stats = yield* manager.stats(loaded.id)
          const flushMs = performance.now() - flushStarted
          return {
            bare: median(bareRounds.map((r) => r.perSecond)),
            manager: median(managerRounds.map((r) => r.perSecond)),
            bareCpuUs: median(bareRounds.map((r) => r.cpuUs)),
            managerCpuUs: median(managerRounds.map((r) => r.cpuUs)),
            samples: stats.aggregate.count,
            flushMs,
            tier: instance.isolation,
          }
        }),
      ).pipe(Effect.provide(live)),
    )
    const ratio = results.manager / results.bare
    const rounded = Math.round(ratio * 100) / 100
    const row = {
      target: `manager.execute, ${inFlight} in flight >= 0.8x the bare instance`,
      measured: `${Math.round(results.manager)}/s vs ${Math.round(results.bare)}/s`,
      ratio: rounded,
      limit: 0.8,
      met: ratio >= 0.8,
    }
    log(`manager benchmark (${results.tier} tier, median of ${rounds} rounds of ${calls} calls, alternating):`)
    log(`  ${row.target}: ${row.measured}  ratio ${row.ratio}  ${row.met ? "met" : "MISSED"}`)
    log(`  baseline (bare instance): ${Math.round(results.bare)} calls/s`)
    log(`  host CPU per call: manager ${results.managerCpuUs.toFixed(1)} µs vs bare ${results.bareCpuUs.toFixed(1)} µs (${(results.managerCpuUs / results.bareCpuUs).toFixed(2)}x)`)
    log(`  samples recorded: ${results.samples}; stats() waited ${Math.round(results.flushMs)} ms for the queue to be written`)
    return { ...results, rows: [row] }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { values } = parseArgs({ options: { rounds: { type: "string", default: "7" }, calls: { type: "string", default: "10000" } } })
  runManagerBench({ rounds: Number(values.rounds), calls: Number(values.calls) }).then(
    () => process.exit(0),
    (error) => {
      console.error(error)
      process.exit(1)
    },
  )
}
