import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Option, Schedule, Tracer } from "effect"
import { dirname } from "node:path"
import { JobQueue } from "../src/jobs/JobQueue.js"
import { managerWorkspace, recordingSpawner, type ManagerWorkspace } from "./managerFixtures.js"
import { removeDir } from "./workerFixtures.js"
import { jobsPluginSource, loadedQueueLayer } from "./jobsFixtures.js"

let ws: ManagerWorkspace
beforeAll(async () => {
  ws = await Effect.runPromise(managerWorkspace([{ id: "jobs", source: jobsPluginSource }]))
}, 60_000)
afterAll(() => removeDir(dirname(ws.root)))

/** Effect's own tracer, keeping every span it makes. */
const recordingTracer = () => {
  const native = Effect.runSync(Effect.tracer)
  const spans: Array<Tracer.Span> = []
  const tracer = Tracer.make({
    span: (...args) => {
      const span = native.span(...args)
      spans.push(span)
      return span
    },
    context: (f, fiber) => native.context(f, fiber),
  })
  return { spans, tracer }
}

describe("JobQueue spans", () => {
  it.live("each attempt of a job runs in a plinth.job span with its job id, instance, action and attempt; the call's span is its child", () => {
    const { spans, tracer } = recordingTracer()
    return Effect.scoped(
      Effect.gen(function* () {
        const queue = yield* JobQueue
        const id = yield* queue.submit({ instance: "jobs", action: "flaky", input: { key: "span", failures: 1 } })
        expect((yield* queue.wait(id)).status).toBe("completed")
        const jobSpans = spans.filter((s) => s.name === "plinth.job")
        expect(jobSpans.map((s) => Object.fromEntries(s.attributes))).toEqual([
          { "plinth.job.id": id, "plinth.instance": "jobs", "plinth.action": "flaky", "plinth.attempt": 1 },
          { "plinth.job.id": id, "plinth.instance": "jobs", "plinth.action": "flaky", "plinth.attempt": 2 },
        ])
        expect(jobSpans.map((s) => s.status._tag)).toEqual(["Ended", "Ended"])
        const invokes = spans.filter((s) => s.name === "plinth.invoke")
        expect(invokes).toHaveLength(2)
        invokes.forEach((span, i) => expect(Option.getOrThrow(span.parent).spanId).toBe(jobSpans[i]!.spanId))
      }).pipe(Effect.provide(loadedQueueLayer(ws, recordingSpawner().layer, ["jobs"], { retry: { schedule: Schedule.spaced("10 millis") } }))),
    ).pipe(Effect.withTracer(tracer))
  })
})
