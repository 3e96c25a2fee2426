import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { dirname } from "node:path"
import type { SequenceStep } from "@plinth/domain"
import { JobQueue } from "../src/jobs/JobQueue.js"
import { PluginManager } from "../src/manager/PluginManager.js"
import { managerWorkspace, recordingSpawner, type ManagerWorkspace } from "./managerFixtures.js"
import { removeDir } from "./workerFixtures.js"
import { collect, eventually, jobsPluginSource, queueLayer } from "./jobsFixtures.js"

let ws: ManagerWorkspace
beforeAll(async () => {
  ws = await Effect.runPromise(managerWorkspace([{ id: "jobs", source: jobsPluginSource }]))
}, 60_000)
afterAll(() => removeDir(dirname(ws.root)))

const ok = (tag: string): SequenceStep => ({ instance: "jobs", action: "work", input: { millis: 10, tag } })
const failing: SequenceStep = { instance: "jobs", action: "fail", input: { category: "input" } }

describe("JobQueue sequences", () => {
  it.scopedLive("three steps failing at step 2: fail-fast ends failed with 2 results and step 3 never runs; best-effort ends completed with [ok, failed, ok]", () =>
    Effect.gen(function* () {
      const manager = yield* PluginManager
      const queue = yield* JobQueue
      yield* manager.load("jobs")
      const all = yield* collect({ _tag: "all" })

      const fast = yield* queue.submitSequence([ok("one"), failing, ok("three")], { mode: "failFast" })
      const fastEvents = yield* collect({ _tag: "sequence", sequence: fast })
      const fastDone = yield* queue.waitSequence(fast)
      expect(fastDone).toMatchObject({ status: "failed", mode: "failFast" })
      expect(fastDone.results.map((r) => [r.index, r.status])).toEqual([
        [0, "completed"],
        [1, "failed"],
      ])
      expect(fastDone.results[0]!.result).toMatchObject({ tag: "one" })
      expect(fastDone.results[1]!.error).toMatchObject({ tag: "PluginInputError" })
      expect(fastDone.finishedAt).toBeDefined()
      // Step 3 never ran: no job was ever made for it.
      yield* eventually(Effect.sync(() => fastEvents.filter((e) => e._tag === "sequenceAdvanced").length === 2))
      expect(all.filter((e) => e._tag === "submitted" && e.sequence === fast)).toHaveLength(2)
      expect(fastEvents.filter((e) => e._tag === "sequenceAdvanced").map((e) => (e._tag === "sequenceAdvanced" ? [e.index, e.stepStatus, e.status] : []))).toEqual([
        [0, "completed", "running"],
        [1, "failed", "failed"],
      ])

      const best = yield* queue.submitSequence([ok("one"), failing, ok("three")], { mode: "bestEffort" })
      const bestDone = yield* queue.waitSequence(best)
      expect(bestDone.status).toBe("completed")
      expect(bestDone.results.map((r) => r.status)).toEqual(["completed", "failed", "completed"])
      expect(bestDone.results[2]!.result).toMatchObject({ tag: "three" })
      expect(Option.getOrThrow(yield* queue.getSequence(best))).toEqual(bestDone)

      // Member jobs carry their place in the sequence from their first event.
      const members = all.filter((e) => e._tag === "submitted" && e.sequence === best)
      expect(members).toHaveLength(3)
      for (const [index, event] of members.entries()) {
        const job = Option.getOrThrow(yield* queue.get(event.job))
        expect(job.sequence).toEqual({ id: best, index })
      }
    }).pipe(Effect.provide(queueLayer(ws, recordingSpawner().layer))),
  )

  it.scopedLive("cancelling a sequence during step 1 means step 2 never runs; an empty sequence completes at once; a bad step is refused up front", () =>
    Effect.gen(function* () {
      const manager = yield* PluginManager
      const queue = yield* JobQueue
      yield* manager.load("jobs")
      const all = yield* collect({ _tag: "all" })
      const id = yield* queue.submitSequence([{ instance: "jobs", action: "work", input: { millis: 5000 } }, ok("two")])
      yield* eventually(Effect.map(queue.running, (r) => r.length === 1), "step 1 running")
      expect(yield* queue.cancelSequence(id)).toBe(true)
      const done = yield* queue.waitSequence(id)
      expect(done.status).toBe("cancelled")
      expect(done.results.map((r) => r.status)).toEqual(["cancelled"])
      expect(yield* queue.cancelSequence(id)).toBe(false)
      // Nothing else is queued or running: step 2 never got a job.
      yield* Effect.sleep("50 millis")
      expect(yield* queue.pending).toEqual([])
      expect(yield* queue.running).toEqual([])
      expect(all.filter((e) => e._tag === "submitted" && e.sequence === id)).toHaveLength(1)

      const empty = yield* queue.submitSequence([])
      expect(yield* queue.waitSequence(empty)).toMatchObject({ status: "completed", results: [], steps: [] })

      const refused = yield* Effect.flip(queue.submitSequence([ok("one"), { instance: "jobs", action: "nope", input: {} }]))
      expect(refused.message).toMatch(/^job refused: step 2: instance 'jobs' \(plugin jobs\) declares no action 'nope'/)
      expect(yield* queue.pending).toEqual([])
    }).pipe(Effect.provide(queueLayer(ws, recordingSpawner().layer))),
  )
})
