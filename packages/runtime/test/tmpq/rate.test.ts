import { it } from "@effect/vitest"
import { Effect } from "effect"
import { JobQueue } from "../../src/jobs/JobQueue.js"
import { managerWorkspace, recordingSpawner } from "../managerFixtures.js"
import { jobsPluginSource, loadedQueueLayer } from "../jobsFixtures.js"
it.live("rate", () =>
  Effect.gen(function* () {
    const ws = yield* managerWorkspace([{ id: "jobs", source: jobsPluginSource }])
    yield* Effect.gen(function* () {
      const queue = yield* JobQueue
      for (const round of [1, 2, 3]) {
        const t0 = performance.now()
        const ids = []
        for (let i = 0; i < 3000; i++) ids.push(yield* queue.submit({ instance: "jobs", action: "pid", input: {} }))
        const t1 = performance.now()
        for (const id of ids) yield* queue.wait(id)
        const t2 = performance.now()
        console.log(`round ${round}: submit ${(3000 / (t1 - t0) * 1000).toFixed(0)}/s, end-to-end ${(3000 / (t2 - t0) * 1000).toFixed(0)} jobs/s`)
      }
    }).pipe(Effect.provide(loadedQueueLayer(ws, recordingSpawner().layer, ["jobs"], { concurrency: 2 })))
  }), 120_000)
