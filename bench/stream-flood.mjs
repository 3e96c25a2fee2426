// A stream's memory under a slow consumer (issue 6 §2): a plugin streams 1,500 chunks of 1 MiB as
// fast as its credit allows, the host takes one every 10 ms with `Stream.runForEach`, and the host's
// RSS growth is measured in a process of its own (test/hostile/support/wire-flood-host.mjs, the same
// host the hostile test runs). Against baselines in the same run, in the same host (the runtime
// loaded, one instance started), with no wire:
//   - "effect": the same chunks parsed from memory, one per pull, taken by the same `Stream.runForEach`
//     consumer: what that consumer costs in this host whatever feeds it;
//   - "plain": the same chunks parsed from memory, one held 10 ms at a time, in plain JavaScript;
//   - "bare": the chunks from a child over a socketpair, read by a plain loop (the test's baseline).
// Rounds rotate the order of the modes; medians are reported with each baseline's own figure.
// Standalone: `node bench/stream-flood.mjs [--rounds N]` (after `npm run build`).
import { execFile } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { parseArgs, promisify } from "node:util"
import { fileURLToPath, pathToFileURL } from "node:url"
import { lockedPluginRoot } from "./support/echoPlugin.mjs"

const here = dirname(fileURLToPath(import.meta.url))
const host = join(here, "..", "test", "hostile", "support", "wire-flood-host.mjs")
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const run = promisify(execFile)

const CHUNKS = 1500
const DELAY_MS = 10
const TARGET_MIB = 64

const floodSource = `import { Effect, Schema, Stream } from "effect"
import { definePlugin } from "@plinth/domain"
const block = "x".repeat(1024 * 1024 - 8)
export default definePlugin({ config: Schema.Struct({}), actions: ({ action, streaming }) => ({
  ping: action({ description: "ping", input: Schema.Struct({}), output: Schema.String, handler: () => Effect.succeed("pong") }),
  flood: streaming({ description: "count chunks of 1 MiB", input: Schema.Struct({ count: Schema.Number }), output: Schema.String,
    stream: ({ count }, context) => Stream.range(1, count).pipe(
      Stream.tap((n) => context.progress(n / count, String(n))),
      Stream.map((n) => String(n).padStart(8, "0") + block)) }),
}) })`

const modes = ["plinth", "effect", "plain", "bare"]

/** One flood in a fresh host process; its JSON line. */
const flood = async (plugin, locked, mode) => {
  const { stdout } = await run(process.execPath, ["--expose-gc", host, plugin.dir, JSON.stringify(locked), String(CHUNKS), String(DELAY_MS), mode], {
    timeout: 120_000,
    maxBuffer: 1024 * 1024,
  })
  const result = JSON.parse(stdout.trim().split("\n").at(-1))
  if (result.taken !== CHUNKS || !result.inOrder) throw new Error(`the ${mode} flood took ${result.taken} chunks${result.inOrder ? "" : " out of order"}`)
  return result
}

export const runStreamFloodBench = async ({ rounds = 3, log = console.log } = {}) => {
  const dir = mkdtempSync(join(tmpdir(), "plinth-bench-flood-"))
  try {
    const { plugin, locked } = await lockedPluginRoot(dir, "flood", floodSource)
    const growth = Object.fromEntries(modes.map((mode) => [mode, []]))
    for (let round = 0; round < rounds; round++) {
      // Rotated, so that no mode always runs first or after the same one.
      for (let i = 0; i < modes.length; i++) {
        const mode = modes[(round + i) % modes.length]
        growth[mode].push((await flood(plugin, locked, mode)).growthMiB)
      }
    }
    const result = Object.fromEntries(modes.map((mode) => [mode, median(growth[mode])]))
    const mib = (x) => `${Math.round(x)} MiB`
    const rows = [
      {
        target: `host RSS growth under ${CHUNKS} x 1 MiB consumed at ${DELAY_MS} ms each < ${TARGET_MIB} MiB (issue 6)`,
        measured: mib(result.plinth),
        limit: TARGET_MIB,
        met: result.plinth < TARGET_MIB,
      },
    ]
    log(`stream flood benchmark (median of ${rounds} rounds; growth of the host's RSS, each flood in a fresh host):`)
    for (const row of rows) log(`  ${row.target}: ${row.measured}  ${row.met ? "met" : "MISSED"}`)
    log(`  the same Stream.runForEach consumer, chunks from memory, no wire: ${mib(result.effect)} (the stream at ${(result.plinth / result.effect).toFixed(2)}x)`)
    log(`  a plain JavaScript consumer, chunks from memory, no wire: ${mib(result.plain)}`)
    log(`  a plain loop reading the chunks from a child over a socketpair: ${mib(result.bare)}`)
    log(`  every round, in MiB: ${modes.map((mode) => `${mode} ${growth[mode].map(Math.round).join("/")}`).join("; ")}`)
    return { ...result, rounds: growth, rows }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { values } = parseArgs({ options: { rounds: { type: "string", default: "3" } } })
  runStreamFloodBench({ rounds: Number(values.rounds) }).then(
    () => process.exit(0),
    (error) => {
      console.error(error)
      process.exit(1)
    },
  )
}
