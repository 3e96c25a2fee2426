// A real cluster runner process for the cluster tests (test/cluster-*.test.ts): PlinthHost over a
// plugin root and lock, the default instances of the plugins named loaded (default: showcase), and
// JobQueueCluster as a runner on 127.0.0.1:<port>, sharing <database> (Postgres) with the others.
//
//   node clusterRunner.mjs <root> <lock> <dataDir> <database> <port> [concurrency] [plugin,plugin:instance,…]
//
// `plugin:instance` loads another instance of the plugin under that id.
//
// Prints "ready <port>" once it has joined the cluster and "refused <json>" (and exits 3) when it may
// not join; then runs until it is killed or sent SIGTERM.
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { JobQueueCluster } from "@plinth/cluster"
import { PlinthHost, PluginManager } from "@plinth/runtime"

const [root, lock, dataDir, database, port, concurrency = "4", plugins = "showcase"] = process.argv.slice(2)
const say = (line) => process.stdout.write(line + "\n")

const host = PlinthHost({ root, lock, dataDir })
const load = (manager, spec) => {
  const [plugin, instanceId] = spec.split(":")
  return manager.load(plugin, instanceId === undefined ? {} : { instanceId })
}
const loaded = Layer.effectDiscard(Effect.flatMap(PluginManager, (m) => Effect.forEach(plugins.split(","), (spec) => load(m, spec)))).pipe(
  Layer.provideMerge(host),
)
const runner = JobQueueCluster({
  database,
  runner: { host: "127.0.0.1", port: Number(port) },
  queue: { concurrency: Number(concurrency) },
}).pipe(Layer.provide(loaded))

const program = Effect.gen(function* () {
  say(`ready ${port}`)
  yield* Effect.never
}).pipe(
  Effect.provide(runner),
  Effect.catchAll((error) =>
    Effect.sync(() => {
      say(`refused ${JSON.stringify({ _tag: error._tag, message: error.message, ...error })}`)
      process.exitCode = 3
    }),
  ),
  // A defect is said too (a test waiting for "ready" shows it), not left to end the process in silence.
  Effect.catchAllDefect((defect) =>
    Effect.sync(() => {
      say(`refused ${JSON.stringify({ _tag: "Defect", message: String(defect instanceof Error ? (defect.stack ?? defect.message) : defect) })}`)
      process.exitCode = 4
    }),
  ),
)

// runMain keeps the process alive while the program runs (a fiber waiting on worker threads alone would not) and
// interrupts it on SIGINT and SIGTERM, so the layers close: the runner leaves the cluster, its workers stop.
NodeRuntime.runMain(program, { disableErrorReporting: true })
