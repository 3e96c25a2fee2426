import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, PubSub } from "effect"
import { readFileSync } from "node:fs"
import { dirname } from "node:path"
import type { JobId, JobLogLine } from "@plinth/domain"
import { JobObservation } from "../src/jobs/JobObservation.js"
import { JobQueue } from "../src/jobs/JobQueue.js"
import { JobQueueLive } from "../src/jobs/JobQueueLive.js"
import { PluginManager } from "../src/manager/PluginManager.js"
import { managerLayer, managerWorkspace, recordingSpawner, type ManagerWorkspace } from "./managerFixtures.js"
import { removeDir } from "./workerFixtures.js"
import { collect, eventually, jobsPluginSource } from "./jobsFixtures.js"

let ws: ManagerWorkspace
beforeAll(async () => {
  ws = await Effect.runPromise(managerWorkspace([{ id: "jobs", source: jobsPluginSource }]))
}, 60_000)
afterAll(() => removeDir(dirname(ws.root)))

/** The worker's real resident memory and CPU time, from /proc (Linux). */
const procSample = (pid: number) => {
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)![1])
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  // utime and stime are fields 14 and 15 of the line, in clock ticks (100 a second).
  const ticks = Number(fields[11]) + Number(fields[12])
  return { at: Date.now(), pid, rssBytes: rssKiB * 1024, cpuMillis: ticks * 10 }
}

/**
 * The queue's observation seam over the manager: samples of the instance's
 * real worker; lines from a hub this test writes to (the worker's own output
 * capture is the manager's part).
 */
const observation = (hub: PubSub.PubSub<JobLogLine>) =>
  Layer.effect(
    JobObservation,
    Effect.map(PluginManager, (manager) =>
      JobObservation.of({
        lines: () => PubSub.subscribe(hub),
        sample: (instance) =>
          Effect.map(Effect.option(manager.get(instance)), (m) => (Option.isSome(m) && m.value.pid !== undefined ? Option.some(procSample(m.value.pid)) : Option.none())),
      }),
    ),
  )

describe("JobQueue observation", () => {
  it.scopedLive("while a job runs, its worker's lines go to its log (bounded, oldest dropped) and a resource snapshot is taken every interval", () =>
    Effect.gen(function* () {
      const hub = yield* PubSub.unbounded<JobLogLine>()
      const manager = managerLayer(ws, recordingSpawner().layer)
      const queueLayer = JobQueueLive({ maxLogLines: 3, snapshotInterval: "100 millis" }).pipe(
        Layer.provide(Layer.merge(manager, observation(hub).pipe(Layer.provide(manager)))),
      )
      yield* Effect.gen(function* () {
        const queue = yield* JobQueue
        const { pid } = yield* (yield* PluginManager).load("jobs")
        const line = (text: string): JobLogLine => ({ at: Date.now(), stream: "stdout", line: text })
        yield* PubSub.publish(hub, line("before the job"))
        const id = yield* queue.submit({ instance: "jobs", action: "work", input: { millis: 600 } })
        const events = yield* collect({ _tag: "job", job: id })
        yield* eventually(Effect.map(queue.running, (r) => r.length === 1), "running")
        // Publish until the first line lands in the job's log.
        yield* eventually(
          Effect.zipRight(PubSub.publish(hub, line("line 0")), Effect.map(queue.logs(id), (l) => l.length > 0)),
          "the first line in the job's log",
        )
        for (let i = 1; i <= 5; i++) yield* PubSub.publish(hub, line(`line ${i}`))
        const done = yield* queue.wait(id)
        yield* PubSub.publish(hub, line("after the job"))
        const logs = (yield* queue.logs(id)).map((l) => l.line)
        expect(logs).toEqual(["line 3", "line 4", "line 5"])
        const snapshots = events.filter((e) => e._tag === "resourceSnapshot").map((e) => (e._tag === "resourceSnapshot" ? e.snapshot : undefined)!)
        expect(snapshots.length).toBeGreaterThanOrEqual(2)
        for (const s of snapshots) {
          expect(s.pid).toBe(pid)
          expect(s.rssBytes).toBeGreaterThan(1024 * 1024)
        }
        expect(snapshots[0]!.cpuPercent).toBeUndefined()
        expect(snapshots[1]!.cpuPercent).toBeGreaterThanOrEqual(0)
        expect(done.lastSnapshot).toEqual(snapshots.at(-1))
        expect((yield* Effect.flip(queue.logs("job-neverseen" as JobId)))._tag).toBe("JobNotFound")

        // The next job on the instance shares its line reader: it gets the lines written while it runs, and the first keeps its own.
        const next = yield* queue.submit({ instance: "jobs", action: "work", input: { millis: 300 } })
        yield* eventually(Effect.map(queue.running, (r) => r.length === 1), "the next job running")
        yield* PubSub.publish(hub, line("next job's line"))
        yield* queue.wait(next)
        expect((yield* queue.logs(next)).map((l) => l.line)).toEqual(["next job's line"])
        expect((yield* queue.logs(id)).map((l) => l.line)).toEqual(["line 3", "line 4", "line 5"])
      }).pipe(Effect.provide(Layer.provideMerge(queueLayer, manager)))
    }),
  )
})
