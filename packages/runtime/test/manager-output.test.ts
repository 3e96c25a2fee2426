import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { dirname } from "node:path"
import { Effect, Option, Queue } from "effect"
import type { WorkerOutputLine } from "../src/instance/OutputLines.js"
import { bubblewrapStatus } from "../src/instance/Isolation.js"
import { PluginManager } from "../src/manager/PluginManager.js"
import { pluginSource, removeDir } from "./workerFixtures.js"
import { managerLayer, managerWorkspace, recordingSpawner, type ManagerWorkspace } from "./managerFixtures.js"

/*
 * A worker's stdout and stderr reach the manager as lines, per instance,
 * across restarts, from real sandboxed workers in both isolation tiers; and a
 * worker's memory and CPU time can be read, from the Node process itself
 * even when bubblewrap stands in front of it.
 */

const source = pluginSource(
  `
    say: action({
      description: "writes the text to stdout and to stderr",
      input: Schema.Struct({ text: Schema.String }),
      output: Schema.Null,
      handler: ({ text }) => Effect.sync(() => { console.log("out: " + text); console.error("err: " + text); return null }),
    }),
    die: action({
      description: "writes its last words to stderr and exits",
      input: Schema.Struct({ text: Schema.String }),
      output: Schema.Null,
      handler: ({ text }) => Effect.sync(() => { console.error(text); process.exit(3) }),
    }),
    flood: action({
      description: "writes n numbered lines to stdout at once, and one line of 1 MiB",
      input: Schema.Struct({ lines: Schema.Number }),
      output: Schema.Null,
      handler: ({ lines }) => Effect.sync(() => {
        let text = ""
        for (let i = 0; i < lines; i++) text += "flood " + i + "\\n"
        process.stdout.write(text)
        process.stderr.write("x".repeat(1024 * 1024) + "\\n")
        return null
      }),
    }),
    allocate: action({
      description: "keeps n MiB of touched memory",
      input: Schema.Struct({ mib: Schema.Number }),
      output: Schema.Null,
      handler: ({ mib }) => Effect.sync(() => { kept.push(Buffer.alloc(mib * 1024 * 1024, 1)); return null }),
    }),
  `,
  "const kept = []",
)

let ws: ManagerWorkspace
beforeAll(async () => {
  ws = await Effect.runPromise(managerWorkspace([{ id: "talker", source }]))
}, 60_000)
afterAll(() => removeDir(dirname(ws.root)))

/**
 * The first line read from the queue (this one or an earlier call's) that
 * matches: stdout and stderr are two pipes, their lines arrive in either order.
 * A generous bound only so that a missing line fails the test instead of hanging it.
 */
const reader = (queue: Queue.Dequeue<WorkerOutputLine>) => {
  const read: Array<WorkerOutputLine> = []
  return (predicate: (line: WorkerOutputLine) => boolean) =>
    Effect.gen(function* () {
      for (;;) {
        const found = read.findIndex(predicate)
        if (found >= 0) return read.splice(found, 1)[0]!
        read.push(yield* Queue.take(queue))
      }
    }).pipe(Effect.timeoutFail({ duration: "15 seconds", onTimeout: () => new Error("the line never came") }))
}

const tiers = (["permissions", "os"] as const).filter((tier) => tier === "permissions" || bubblewrapStatus().ok)

describe.each(tiers)("worker output and resource snapshots, %s tier", (isolation) => {
  it.scopedLive("console.log and console.error in the plugin reach the instance's output, across a restart, and the failure's stderr tail still holds stderr", () => {
    const { layer } = recordingSpawner()
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      // Subscribed before the instance exists: lines of every worker that serves it.
      const lineMatching = reader(yield* manager.subscribeOutput("talker"))
      const first = yield* manager.load("talker")
      yield* manager.execute("talker", "say", { text: "hello \u001b[1mbold\u001b[0m" })
      const out = yield* lineMatching((l) => l.stream === "stdout")
      expect(out).toMatchObject({ stream: "stdout", line: "out: hello bold", pid: first.pid })
      expect(yield* lineMatching((l) => l.stream === "stderr")).toMatchObject({ line: "err: hello bold", pid: first.pid })
      expect((yield* manager.recentOutput("talker")).map((l) => l.line)).toEqual(expect.arrayContaining(["out: hello bold", "err: hello bold"]))

      // The worker dies during a call: the failure carries what it wrote to stderr, as before, and so does its output.
      const failure = yield* Effect.flip(manager.execute("talker", "die", { text: "about to die" }))
      expect(failure).toMatchObject({ _tag: "WorkerExited", exitCode: 3 })
      expect((failure as { stderrTail?: string }).stderrTail ?? "").toContain("about to die")
      yield* lineMatching((l) => l.line === "about to die" && l.stream === "stderr")

      // The restarted worker's lines reach the same subscription.
      yield* manager.execute("talker", "say", { text: "again" })
      const second = yield* manager.get("talker")
      expect(second.pid).not.toBe(first.pid)
      expect(yield* lineMatching((l) => l.line === "out: again")).toMatchObject({ pid: second.pid })

      // Unloading forgets the recent lines.
      yield* manager.unload("talker")
      expect(yield* manager.recentOutput("talker")).toEqual([])
      expect(Option.isNone(yield* manager.snapshot("talker"))).toBe(true)
    }).pipe(Effect.provide(managerLayer(ws, layer, { isolation })))
  })

  it.scopedLive("a flood of output is kept bounded: lines past the rate are dropped and counted, an over-long line is cut", () => {
    const { layer } = recordingSpawner()
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      yield* manager.load("talker")
      const queue = yield* manager.subscribeOutput("talker", { buffer: 30_000 })
      yield* manager.execute("talker", "flood", { lines: 20_000 })
      // Lines right after the flood may be dropped too (the rate is per second): say something until a line of it is kept.
      const kept: Array<WorkerOutputLine> = []
      let said = 0
      while (!kept.some((l) => l.line.startsWith("out: after"))) {
        if (said === 100) return yield* Effect.fail(new Error("no line was kept after the flood"))
        yield* manager.execute("talker", "say", { text: `after ${said++}` })
        yield* Effect.sleep("20 millis")
        kept.push(...(yield* Queue.takeAll(queue)))
      }
      const flood = kept.filter((l) => l.line.startsWith("flood "))
      const long = kept.filter((l) => l.line.startsWith("xxx"))
      const dropped = kept
        .map((l) => /^\[plinth\] (\d+) lines? of output dropped: the worker wrote faster/.exec(l.line))
        .reduce((sum, m) => sum + (m === null ? 0 : Number(m[1])), 0)
      // Every flood line is kept or counted before a later stdout line is kept (one pipe, one order); the counts may
      // include the long stderr line and some "after" lines too, never more.
      expect(dropped).toBeGreaterThan(10_000)
      expect(flood.length + dropped).toBeGreaterThanOrEqual(20_000)
      expect(flood.length + long.length + dropped).toBeLessThanOrEqual(20_001 + 2 * said)
      expect(flood.slice(0, 3).map((l) => l.line)).toEqual(["flood 0", "flood 1", "flood 2"])
      for (const line of long) expect(line).toMatchObject({ stream: "stderr", cut: true, line: "x".repeat(8192) })
      expect(yield* manager.recentOutput("talker")).toHaveLength(200)
    }).pipe(Effect.provide(managerLayer(ws, layer, { isolation })))
  })

  it.scopedLive("a snapshot measures the Node worker itself, and its RSS grows when the plugin keeps 100 MiB", () => {
    const { layer } = recordingSpawner()
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      const loaded = yield* manager.load("talker")
      const before = Option.getOrThrow(yield* manager.snapshot("talker"))
      // Under bubblewrap the host holds bwrap's pid; the sample is of the Node process below it.
      if (isolation === "os") expect(before.pid).not.toBe(loaded.pid)
      else expect(before.pid).toBe(loaded.pid)
      yield* manager.execute("talker", "allocate", { mib: 100 })
      const after = Option.getOrThrow(yield* manager.snapshot("talker"))
      expect(after.pid).toBe(before.pid)
      expect(after.rssBytes - before.rssBytes).toBeGreaterThan(90 * 1024 * 1024)
      expect(after.cpuMillis).toBeGreaterThanOrEqual(before.cpuMillis)
    }).pipe(Effect.provide(managerLayer(ws, layer, { isolation })))
  })
})
