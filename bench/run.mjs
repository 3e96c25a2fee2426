// `npm run bench`: every Plinth benchmark, with a readable report (or one JSON object with --json).
//
//   node bench/run.mjs [--json] [--repeats N] [--data-dir DIR]
import { existsSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { parseArgs } from "node:util"

const here = dirname(fileURLToPath(import.meta.url))

const usage = "usage: node bench/run.mjs [--json] [--repeats N] [--data-dir DIR]"
let options
try {
  options = parseArgs({
    options: {
      json: { type: "boolean", default: false },
      repeats: { type: "string", default: "5" },
      "data-dir": { type: "string" },
      help: { type: "boolean", default: false },
    },
  }).values
} catch (error) {
  console.error(`${error.message}\n${usage}`)
  process.exit(2)
}
if (options.help) {
  console.log(usage)
  process.exit(0)
}
const repeats = Number(options.repeats)
if (!Number.isInteger(repeats) || repeats < 1) {
  console.error(`--repeats must be a positive integer\n${usage}`)
  process.exit(2)
}

// Progress goes to stderr so that --json leaves stdout to the one JSON object.
const log = (line) => process.stderr.write(`${line}\n`)

let treeDigest
try {
  treeDigest = await import("./tree-digest.mjs")
} catch (error) {
  console.error(`cannot load the benchmark (is the workspace built? run \`npm run build\`): ${error.message}`)
  process.exit(1)
}

const report = { treeDigest: null, worker: null, manager: null, streamFlood: null, journal: null, queue: null, cluster: null, startup: null }
report.treeDigest = await treeDigest.runTreeDigestBench({
  repeats,
  log,
  ...(options["data-dir"] !== undefined ? { dataDir: options["data-dir"] } : {}),
})
if (!options.json) console.log(`\n${treeDigest.formatTreeDigestReport(report.treeDigest)}\n`)

// The worker benchmark is optional: it runs when its module is present.
const workerBenchPath = join(here, "worker.mjs")
if (existsSync(workerBenchPath)) {
  const workerBench = await import(pathToFileURL(workerBenchPath).href)
  if (typeof workerBench.runWorkerBench === "function") {
    // Its own report goes to stdout, unless stdout is reserved for --json.
    const workerLog = options.json ? log : (line) => console.log(line)
    report.worker = (await workerBench.runWorkerBench({ log: workerLog })) ?? null
  }
}

// The PluginManager's call path against the bare instance, in the same run.
const managerBench = await import("./manager.mjs")
report.manager = await managerBench.runManagerBench({ log: options.json ? log : (line) => console.log(line) })

// A stream's memory under a slow consumer, against the same consumer fed from memory in the same host (issue 6 §2).
const streamFloodBench = await import("./stream-flood.mjs")
report.streamFlood = await streamFloodBench.runStreamFloodBench({ rounds: Math.min(repeats, 3), log: options.json ? log : (line) => console.log(line) })

// The job journal's grouped commits against raw better-sqlite3 in one transaction, in the same run (ADR 0030).
const journalBench = await import("./journal.mjs")
report.journal = await journalBench.runJournalBench({ rounds: repeats, log: options.json ? log : (line) => console.log(line) })

// No-op jobs through the JobQueue and a worker, with and without the journal and subscribers, beside piscina (issue 9 §7).
const queueBench = await import("./queue.mjs")
report.queue = await queueBench.runQueueBench({ rounds: repeats, log: options.json ? log : (line) => console.log(line) })

// The job queue across one, two and three cluster runners over Postgres, against the single host, and failover (issue 10 §6).
const clusterBench = await import("./cluster.mjs")
report.cluster = await clusterBench.runClusterBench({ rounds: Math.min(repeats, 3), log: options.json ? log : (line) => console.log(line) })

// Start-up of the `plinth` command, against `node -e 0` in the same run (ADR 0018).
const startupBench = await import("./startup.mjs")
report.startup = await startupBench.runStartupBench({ repeats: Math.max(repeats, 11), log })
if (!options.json) console.log(`\n${startupBench.formatStartupReport(report.startup)}\n`)

if (options.json) console.log(JSON.stringify(report, null, 2))
