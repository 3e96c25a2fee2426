import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { dirname } from "node:path"
import { Effect, Option } from "effect"
import { JobQueue } from "../src/jobs/JobQueue.js"
import { PluginManager } from "../src/manager/PluginManager.js"
import { managerWorkspace, recordingSpawner, type ManagerWorkspace } from "./managerFixtures.js"
import { pluginSource, removeDir } from "./workerFixtures.js"
import { collect, loadedQueueLayer } from "./jobsFixtures.js"

/*
 * The queue over a real manager and real workers, with no observation of the
 * test's own: each job's log is what its worker printed while it ran (the
 * manager's output capture), and its resource snapshots are of that worker's
 * Node process (the manager's /proc samples).
 */

const source = pluginSource(`
    chat: action({
      description: "prints 'prefix line i' n times and one line to stderr, keeps 64 MiB, burns CPU for a while, then waits for the host to read its output",
      input: Schema.Struct({ prefix: Schema.String, lines: Schema.Number, busyMillis: Schema.Number }),
      output: Schema.Number,
      handler: ({ prefix, lines, busyMillis }) =>
        Effect.gen(function* () {
          console.error(prefix + " err")
          for (let i = 0; i < lines; i++) console.log(prefix + " line " + i)
          kept.push(Buffer.alloc(64 * 1024 * 1024, 1))
          const until = Date.now() + busyMillis
          while (Date.now() < until) {
            const slice = Date.now() + 20
            while (Date.now() < slice) {}
            yield* Effect.yieldNow()
          }
          // The output goes through a pipe, the result through the channel: give the host a moment to read the pipe first.
          yield* Effect.sleep(Duration.millis(300))
          return process.pid
        }),
    }),
`, "const kept = []")

let ws: ManagerWorkspace
beforeAll(async () => {
  ws = await Effect.runPromise(managerWorkspace([{ id: "chatty", source }]))
}, 60_000)
afterAll(() => removeDir(dirname(ws.root)))

describe("JobQueue over the manager's worker output and samples", () => {
  it.scopedLive("a job's log holds what its worker printed while it ran, bounded to maxLogLines; its snapshots measure that worker", () =>
    Effect.gen(function* () {
      const queue = yield* JobQueue
      const manager = yield* PluginManager
      // Printed before any job: in no job's log.
      yield* manager.execute("chatty", "chat", { prefix: "before", lines: 2, busyMillis: 0 })

      const first = yield* queue.submit({ instance: "chatty", action: "chat", input: { prefix: "first", lines: 3, busyMillis: 700 } })
      const events = yield* collect({ _tag: "job", job: first })
      const done = yield* queue.wait(first)
      expect(done.status).toBe("completed")
      const workerPid = done.result as number
      const log = yield* queue.logs(first)
      expect(log.map((l) => [l.stream, l.line]).sort()).toEqual([
        ["stderr", "first err"],
        ["stdout", "first line 0"],
        ["stdout", "first line 1"],
        ["stdout", "first line 2"],
      ])

      // Snapshots every 100 ms while it ran: the Node worker's own pid (under bubblewrap too), its memory with the 64 MiB kept, CPU use from the second on.
      const snapshots = events.flatMap((e) => (e._tag === "resourceSnapshot" ? [e.snapshot] : []))
      expect(snapshots.length).toBeGreaterThanOrEqual(2)
      for (const s of snapshots) expect(s.pid).toBe(workerPid)
      expect(snapshots[0]!.cpuPercent).toBeUndefined()
      expect(snapshots.slice(1).every((s) => s.cpuPercent !== undefined && s.cpuPercent >= 0)).toBe(true)
      expect(Math.max(...snapshots.map((s) => s.cpuPercent ?? 0))).toBeGreaterThan(10)
      expect(done.lastSnapshot).toEqual(snapshots.at(-1))
      expect(done.lastSnapshot!.rssBytes).toBeGreaterThan(64 * 1024 * 1024)
      expect(Option.getOrThrow(yield* manager.snapshot("chatty")).pid).toBe(workerPid)

      // More lines than maxLogLines: the newest are kept.
      const second = yield* queue.submit({ instance: "chatty", action: "chat", input: { prefix: "second", lines: 20, busyMillis: 0 } })
      expect((yield* queue.wait(second)).status).toBe("completed")
      const stdout = (yield* queue.logs(second)).filter((l) => l.stream === "stdout").map((l) => l.line)
      expect(stdout.length).toBeGreaterThanOrEqual(4)
      expect(stdout).toEqual(Array.from({ length: stdout.length }, (_, i) => `second line ${20 - stdout.length + i}`))
      expect((yield* queue.logs(second)).length).toBe(5)
    }).pipe(Effect.provide(loadedQueueLayer(ws, recordingSpawner().layer, ["chatty"], { maxLogLines: 5, snapshotInterval: "100 millis" }))),
  )
})
