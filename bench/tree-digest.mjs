// Tree-digest benchmark: Plinth's tree digest against `openssl dgst -sha256`
// and `sha256sum` over the same files, in the same process run.
import { spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, ManagedRuntime } from "effect"
import { Hashing, measureTree, PlinthLive } from "@plinth/runtime"
import { ensureTree, TREES } from "./trees.mjs"

const MiB = 1024 * 1024
const here = dirname(fileURLToPath(import.meta.url))
export const defaultDataDir = join(here, ".data")

/** Runs a command with `input` on stdin; resolves with its stdout once it exits successfully. */
const run = (command, args, { cwd, input }) =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, LC_ALL: "C" } })
    const out = []
    const err = []
    child.stdout.on("data", (chunk) => out.push(chunk))
    child.stderr.on("data", (chunk) => err.push(chunk))
    child.on("error", reject)
    child.on("close", (code) =>
      code === 0
        ? resolve(Buffer.concat(out))
        : reject(new Error(`${command} ${args.join(" ")} exited with ${code}: ${Buffer.concat(err).toString().trim()}`)),
    )
    child.stdin.end(input)
  })

/** The file list the command-line tools get, made the coreutils way (not timed, which favours them). */
const listFiles = async (root) => {
  const found = await run("sh", ["-c", "find . -type f -printf '%P\\0' | sort -z"], { cwd: root, input: "" })
  return found.toString("utf8").split("\0").filter((p) => p !== "")
}

const timed = async (measure) => {
  const started = performance.now()
  const value = await measure()
  return { ms: performance.now() - started, value }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

/** The digest anyone can recompute: `h1:` + base64 of the SHA-256 of sha256sum's output over the sorted list. */
const digestFromSha256sum = (stdout) => `h1:${createHash("sha256").update(stdout).digest("base64")}`

/** openssl -r prints `<hex> *<path>`; sha256sum prints `<hex>  <path>`. */
const opensslAsSha256sum = (stdout) => stdout.toString("utf8").replaceAll(" *", "  ")

const benchTree = async (runtime, tree, root, repeats, log) => {
  const files = await listFiles(root)
  const nulList = Buffer.from(files.map((f) => `${f}\0`).join(""))
  const absolutePaths = files.map((f) => join(root, f))

  const tools = [
    {
      tool: "plinth measureTree",
      note: "walk + hash + digest (public API, PlinthLive)",
      measure: () => runtime.runPromise(measureTree(root, tree.name)),
    },
    {
      tool: "plinth hashFiles",
      note: "Hashing service over the same file list as the tools",
      measure: () => runtime.runPromise(Effect.flatMap(Hashing, (h) => h.hashFiles(absolutePaths))),
    },
    {
      tool: "openssl",
      note: "xargs -0 openssl dgst -sha256 -r",
      measure: () => run("xargs", ["-0", "openssl", "dgst", "-sha256", "-r"], { cwd: root, input: nulList }),
    },
    {
      tool: "sha256sum",
      note: "xargs -0 sha256sum",
      measure: () => run("xargs", ["-0", "sha256sum"], { cwd: root, input: nulList }),
    },
  ]

  // Warm the page cache and every code path once, untimed; keep the answers to check them.
  const answers = {}
  for (const t of tools) answers[t.tool] = await t.measure()

  const reference = digestFromSha256sum(answers["sha256sum"])
  const plinthDigest = answers["plinth measureTree"].digest
  const sha256sumLines = answers["sha256sum"].toString("utf8")
  const hashFilesLines = answers["plinth hashFiles"].map((h, i) => `${h}  ${files[i]}\n`).join("")
  const checks = {
    referenceDigest: reference,
    plinthDigest,
    digestMatchesCoreutils: plinthDigest === reference,
    hashFilesMatchesSha256sum: hashFilesLines === sha256sumLines,
    opensslMatchesSha256sum: opensslAsSha256sum(answers["openssl"]) === sha256sumLines,
    fileCountMatches: answers["plinth measureTree"].entries.length === files.length,
  }
  if (!Object.entries(checks).every(([k, v]) => typeof v !== "boolean" || v))
    throw new Error(`${tree.name}: the tools disagree: ${JSON.stringify(checks)}`)

  // Interleave the tools in every round so background noise lands on all of them alike.
  const samples = Object.fromEntries(tools.map((t) => [t.tool, []]))
  for (let round = 0; round < repeats; round++) {
    for (const t of tools) samples[t.tool].push((await timed(t.measure)).ms)
    log(`  ${tree.name}: round ${round + 1}/${repeats}`)
  }

  const totalBytes = tree.totalBytes
  const results = tools.map((t) => {
    const ms = median(samples[t.tool])
    return {
      tool: t.tool,
      note: t.note,
      medianMs: ms,
      samplesMs: samples[t.tool],
      mibPerSecond: totalBytes / MiB / (ms / 1000),
      filesPerSecond: files.length / (ms / 1000),
    }
  })
  const byTool = Object.fromEntries(results.map((r) => [r.tool, r]))
  for (const r of results) {
    r.ratioVsOpenssl = byTool["openssl"].medianMs / r.medianMs
    r.ratioVsSha256sum = byTool["sha256sum"].medianMs / r.medianMs
  }
  return { tree: tree.name, files: files.length, totalBytes, repeats, checks, results }
}

/** Runs the benchmark over both trees; `log` receives progress lines. */
export const runTreeDigestBench = async ({ repeats = 5, dataDir = defaultDataDir, log = () => {} } = {}) => {
  const runtime = ManagedRuntime.make(PlinthLive)
  try {
    const trees = []
    for (const tree of TREES) {
      const root = ensureTree(dataDir, tree, log)
      log(`benchmarking ${tree.name} (${tree.files} files, ${tree.totalBytes / MiB} MiB) ...`)
      trees.push(await benchTree(runtime, tree, root, repeats, log))
    }
    return { benchmark: "tree-digest", node: process.version, trees }
  } finally {
    await runtime.dispose()
  }
}

const pad = (s, n) => String(s).padEnd(n)
const padLeft = (s, n) => String(s).padStart(n)

/** A readable report, plus the Markdown table the README carries. */
export const formatTreeDigestReport = (report) => {
  const lines = [`Tree digest (median of ${report.trees[0]?.repeats ?? 0} runs, page cache warm, ${report.node})`, ""]
  for (const t of report.trees) {
    lines.push(`${t.tree}: ${t.files} files, ${(t.totalBytes / MiB).toFixed(0)} MiB  digest ${t.checks.plinthDigest}`)
    lines.push(`  digest equals coreutils (sha256sum) pipeline: ${t.checks.digestMatchesCoreutils ? "yes" : "NO"}`)
    lines.push(`  ${pad("tool", 20)}${padLeft("median ms", 11)}${padLeft("MiB/s", 10)}${padLeft("files/s", 10)}${padLeft("vs openssl", 12)}${padLeft("vs sha256sum", 14)}`)
    for (const r of t.results)
      lines.push(
        `  ${pad(r.tool, 20)}${padLeft(r.medianMs.toFixed(0), 11)}${padLeft(r.mibPerSecond.toFixed(0), 10)}${padLeft(r.filesPerSecond.toFixed(0), 10)}${padLeft(r.ratioVsOpenssl.toFixed(2) + "x", 12)}${padLeft(r.ratioVsSha256sum.toFixed(2) + "x", 14)}`,
      )
    lines.push("")
  }
  lines.push("| tree | tool | MiB/s | files/s | vs openssl |", "|---|---|---:|---:|---:|")
  for (const t of report.trees)
    for (const r of t.results)
      lines.push(
        `| ${t.files} files / ${(t.totalBytes / MiB).toFixed(0)} MiB | ${r.tool} | ${r.mibPerSecond.toFixed(0)} | ${Math.round(r.filesPerSecond)} | ${r.ratioVsOpenssl.toFixed(2)}x |`,
      )
  return lines.join("\n")
}
