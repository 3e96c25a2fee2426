import { it } from "@effect/vitest"
import { Effect } from "effect"
import { JobQueue } from "../../src/jobs/JobQueue.js"
import { PluginManager } from "../../src/manager/PluginManager.js"
import { managerWorkspace, recordingSpawner } from "../managerFixtures.js"
import { jobsPluginSource, loadedQueueLayer } from "../jobsFixtures.js"
it.live("rate", () =>
  Effect.gen(function* () {
    const ws = yield* managerWorkspace([{ id: "jobs", source: jobsPluginSource }])
    yield* Effect.gen(function* () {
      const queue = yield* JobQueue
      const manager = yield* PluginManager
      for (const round of [1, 2, 3, 4]) {
        let t0 = performance.now()
        yield* Effect.forEach(Array.from({ length: 3000 }), () => manager.execute("jobs", "pid", {}), { concurrency: 2, discard: true })
        const raw = 3000 / (performance.now() - t0) * 1000
        t0 = performance.now()
        const ids = []
        for (let i = 0; i < 3000; i++) ids.push(yield* queue.submit({ instance: "jobs", action: "pid", input: {} }))
        for (const id of ids) yield* queue.wait(id)
        const q = 3000 / (performance.now() - t0) * 1000
        console.log(`round ${round}: manager.execute x2 ${raw.toFixed(0)}/s, queue ${q.toFixed(0)} jobs/s, ratio ${(q / raw).toFixed(2)}`)
      }
    }).pipe(Effect.provide(loadedQueueLayer(ws, recordingSpawner().layer, ["jobs"], { concurrency: 2 })))
  }), 120_000)
