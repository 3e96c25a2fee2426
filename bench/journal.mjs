// The job journal's write rate: jobs journaled per second, each job three writes (pending, running,
// completed) of one job each, awaited one after another as the queue does, by 1, 8 and 64 writers at
// once; medians of rounds on fresh files. Against a baseline in the same run: raw better-sqlite3
// upserting the same rows (same table, same JSON) in one transaction, the most the file itself takes.
// Standalone: `node bench/journal.mjs [--rounds N]` (after `npm run build`).
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { pathToFileURL } from "node:url"
import Sqlite from "better-sqlite3"
import { Effect, Layer } from "effect"
import { DatabaseLive, databasePath, JobJournal, JobJournalLive } from "@plinth/runtime"

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const round = (x) => Math.round(x)

const jobAt = (n) => ({
  id: `job-${n.toString(36)}`,
  instance: "echo",
  action: "echo",
  input: { text: "hello", n },
  priority: 0,
  status: "pending",
  submittedAt: 1_800_000_000_000 + n,
  progress: -1,
  retryCount: 0,
})
const lifecycle = (job) => {
  const running = { ...job, status: "running", startedAt: job.submittedAt + 1, progress: 0 }
  return [job, running, { ...running, status: "completed", finishedAt: job.submittedAt + 2, progress: 1, result: { text: "hello" } }]
}

/** Jobs per second through JobJournal with `writers` callers at once, `total` jobs in all, and this process's CPU per job in µs. */
const journalRound = (dataDir, writers, total) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const journal = yield* JobJournal
      let next = 0
      const writer = Effect.gen(function* () {
        for (let n = next++; n < total; n = next++) for (const state of lifecycle(jobAt(n))) yield* journal.write([state])
      })
      const started = performance.now()
      const cpu = process.cpuUsage()
      yield* Effect.all(Array.from({ length: writers }, () => writer), { concurrency: "unbounded", discard: true })
      const used = process.cpuUsage(cpu)
      return { perSecond: total / ((performance.now() - started) / 1000), cpuUs: (used.user + used.system) / total }
    }).pipe(Effect.provide(JobJournalLive().pipe(Layer.provide(DatabaseLive({ dataDir }))))),
  )

/** The same rows, the same three writes per job, straight into the file in one transaction (the tables made by migration). */
const rawRound = async (dataDir, total) => {
  await Effect.runPromise(Effect.provide(Effect.void, DatabaseLive({ dataDir })))
  const db = new Sqlite(databasePath({ dataDir }))
  try {
    const upsert = db.prepare(
      `INSERT INTO jobs (id, instance, action, priority, status, submitted_at, finished_at, progress, retry_count, job_json)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET status = excluded.status, finished_at = excluded.finished_at, progress = excluded.progress, job_json = excluded.job_json`,
    )
    const started = performance.now()
    db.transaction(() => {
      for (let n = 0; n < total; n++) {
        for (const s of lifecycle(jobAt(n))) {
          upsert.run(s.id, s.instance, s.action, s.priority, s.status, s.submittedAt, s.finishedAt ?? null, s.progress, s.retryCount, JSON.stringify(s))
        }
      }
    })()
    return { perSecond: total / ((performance.now() - started) / 1000) }
  } finally {
    db.close()
  }
}

export async function runJournalBench({ rounds = 5, writerCounts = [1, 8, 64], totals = { 1: 1_000, 8: 5_000, 64: 10_000 }, log = console.log } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "plinth-bench-journal-"))
  let fresh = 0
  const freshDir = () => join(dir, `d${fresh++}`)
  try {
    // Warm-up: the module code and SQLite's statements, not measured.
    await journalRound(freshDir(), 8, 500)
    await rawRound(freshDir(), 1_000)
    const baseline = []
    const byWriters = Object.fromEntries(writerCounts.map((w) => [w, []]))
    for (let r = 0; r < rounds; r++) {
      baseline.push((await rawRound(freshDir(), 10_000)).perSecond)
      for (const w of writerCounts) byWriters[w].push(await journalRound(freshDir(), w, totals[w] ?? 5_000))
    }
    const baselineMedian = median(baseline)
    const report = {
      rounds,
      baselineRawOneTransaction: { jobsPerSecond: round(baselineMedian) },
      journal: writerCounts.map((w) => {
        const perSecond = median(byWriters[w].map((x) => x.perSecond))
        return { writers: w, jobs: totals[w] ?? 5_000, jobsPerSecond: round(perSecond), cpuUsPerJob: round(median(byWriters[w].map((x) => x.cpuUs))), ratioToBaseline: Number((perSecond / baselineMedian).toFixed(3)) }
      }),
      target: { jobsPerSecond: 5_000 },
    }
    log(`Job journal (3 writes per job, grouped commits, medians of ${rounds}):`)
    log(`  raw better-sqlite3, one transaction (baseline): ${report.baselineRawOneTransaction.jobsPerSecond} jobs/s`)
    for (const j of report.journal) {
      log(`  JobJournal, ${String(j.writers).padStart(2)} writer${j.writers === 1 ? " " : "s"}: ${String(j.jobsPerSecond).padStart(6)} jobs/s (${j.cpuUsPerJob} µs CPU/job, ${j.ratioToBaseline}× baseline)`)
    }
    return report
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { values } = parseArgs({ options: { rounds: { type: "string", default: "5" }, json: { type: "boolean", default: false } } })
  const report = await runJournalBench({ rounds: Number(values.rounds), log: values.json ? () => {} : console.log })
  if (values.json) console.log(JSON.stringify(report, null, 2))
}
