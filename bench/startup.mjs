// Start-up benchmark: whole-process wall time of `plinth` commands, each set
// against `node -e 0` measured in the same run, interleaved (so a busy machine
// slows every row alike). Standalone: `node bench/startup.mjs [--repeats N]`
// (after `npm run build`). The target (ADR 0018) is `--version` and `plugins
// verify` within 2x `node -e 0`.
import { spawnSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { loadavg } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const repo = join(dirname(fileURLToPath(import.meta.url)), "..")
const launcher = join(repo, "packages", "cli", "bin", "plinth.js")
const unbundled = join(repo, "packages", "cli", "dist", "bin.js")
const examples = ["--root", join(repo, "examples", "plugins"), "--lock", join(repo, "PLUGINS.lock")]

const median = (xs) => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** The rows: what a user types, and how it runs. `baseline` is the row every other is divided by. */
export const startupRows = [
  { name: "node -e 0", args: ["-e", "0"], baseline: true },
  { name: "plinth --version", args: [launcher, "--version"], target: 2 },
  { name: "plinth plugins verify (examples)", args: [launcher, "plugins", "verify", ...examples], target: 2 },
  { name: "plinth plugins invoke greeter greet", args: [launcher, "plugins", "invoke", ...examples, "greeter", "greet", "--input", '{"name":"Ada"}'] },
  { name: "unbundled dist/bin.js --version", args: [unbundled, "--version"] },
  { name: "unbundled dist/bin.js plugins verify", args: [unbundled, "plugins", "verify", ...examples] },
]

/**
 * CPU time of this process's waited-for children (user + system, ms), from
 * /proc (Linux; in clock ticks, usually 10 ms): on a busy machine wall time
 * includes waiting for a core, CPU time does not.
 */
const childrenCpuMs = () => {
  try {
    const fields = readFileSync("/proc/self/stat", "utf8").split(") ")[1].split(" ")
    // Fields 16 and 17 of stat (cutime, cstime), counted from the state field (3).
    return ((Number(fields[13]) + Number(fields[14])) * 1000) / 100
  } catch {
    return Number.NaN
  }
}

const timeOnce = (args) => {
  const cpuBefore = childrenCpuMs()
  const started = process.hrtime.bigint()
  // No NODE_OPTIONS: a V8 flag there would make V8 refuse every code cache.
  const run = spawnSync(process.execPath, args, { cwd: repo, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, NODE_OPTIONS: "" } })
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  if (run.status !== 0) throw new Error(`${args.join(" ")} exited with ${run.status}: ${run.stderr.toString().trim().split("\n")[0]}`)
  return { ms, cpuMs: childrenCpuMs() - cpuBefore }
}

export const runStartupBench = async ({ repeats = 11, log = () => {} } = {}) => {
  log(`start-up: ${repeats} interleaved runs of ${startupRows.length} commands`)
  const loadBefore = loadavg().map((x) => round(x, 2))
  const samples = startupRows.map(() => [])
  const cpu = startupRows.map(() => [])
  // One unmeasured round first: the file cache, and the lazily written code cache when there is none yet.
  for (const row of startupRows) timeOnce(row.args)
  for (let i = 0; i < repeats; i++)
    startupRows.forEach((row, r) => {
      const { ms, cpuMs } = timeOnce(row.args)
      samples[r].push(ms)
      cpu[r].push(cpuMs)
    })
  // Other work on the machine slows every row, and not always alike: the load says how quiet the run was.
  const load = loadavg().map((x) => round(x, 2))
  const base = startupRows.findIndex((row) => row.baseline)
  const baselineMs = median(samples[base])
  const baselineCpuMs = median(cpu[base])
  return {
    repeats,
    loadAverage: { before: loadBefore, after: load },
    baseline: { name: "node -e 0", medianMs: round(baselineMs), medianCpuMs: round(baselineCpuMs) },
    rows: startupRows.map((row, r) => {
      const medianMs = median(samples[r])
      const medianCpuMs = median(cpu[r])
      return {
        name: row.name,
        medianMs: round(medianMs),
        ratio: round(medianMs / baselineMs, 2),
        medianCpuMs: round(medianCpuMs),
        cpuRatio: round(medianCpuMs / baselineCpuMs, 2),
        ...(row.target !== undefined ? { target: row.target } : {}),
      }
    }),
  }
}

const round = (x, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits

export const formatStartupReport = (report) =>
  [
    `Start-up (whole process, medians of ${report.repeats}; baseline node -e 0 = ${report.baseline.medianMs} ms wall, ${report.baseline.medianCpuMs} ms CPU in this run; load average ${report.loadAverage.before.join(" ")} before, ${report.loadAverage.after.join(" ")} after)`,
    `  ${"command".padEnd(40)} ${"wall".padStart(10)} ${"ratio".padStart(6)} ${"CPU".padStart(10)} ${"ratio".padStart(6)}`,
    ...report.rows.map(
      (row) =>
        `  ${row.name.padEnd(40)} ${`${row.medianMs} ms`.padStart(10)} ${`${row.ratio.toFixed(2)}x`.padStart(6)} ${`${row.medianCpuMs} ms`.padStart(10)} ${`${row.cpuRatio.toFixed(2)}x`.padStart(6)}` +
        (row.target !== undefined ? `  (target wall <= ${row.target}x: ${row.ratio <= row.target ? "met" : "missed"})` : ""),
    ),
  ].join("\n")

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const at = process.argv.indexOf("--repeats")
  const report = await runStartupBench({ repeats: at > 0 ? Number(process.argv[at + 1]) : 11, log: (line) => process.stderr.write(`${line}\n`) })
  console.log(process.argv.includes("--json") ? JSON.stringify(report, null, 2) : formatStartupReport(report))
}
