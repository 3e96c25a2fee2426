// A real host process for the journal's end-to-end test (test/job-journal-e2e.test.ts): PlinthHost
// and JobQueueLive over one data directory, the example plugins' showcase instance loaded.
//
//   crash <root> <lock> <dataDir> <count>
//       submits two long jobs (priority 9; the first with an idempotency key, the second without),
//       waits until the journal says both are running, prints "running <keyed id> <unkeyed id>" and
//       "workers <pid>…", then submits <count> long jobs (priority i % 3), printing "submitted <id>"
//       as each submit returns (its pending record journaled), then "all submitted", and waits to be killed.
//   inspect <root> <lock> <dataDir> <id>…
//       starts the host again over the same data directory, and once its queue is up prints one JSON
//       line: { running: [ids], pending: [ids in run order], jobs: { id: job } } for the ids given,
//       then stops cleanly.
import { Duration, Effect, Layer, Option, Schema } from "effect"
import { Job } from "@plinth/domain"
import { JobJournal, JobQueue, JobQueueLive, PlinthHost, PluginManager } from "@plinth/runtime"

const [mode, root, lock, dataDir, ...rest] = process.argv.slice(2)
const say = (line) => process.stdout.write(line + "\n")

const host = PlinthHost({ root, lock, dataDir })
// Instances first, as a host does: a queue recovering its journal runs its jobs at once.
const loaded = Layer.effectDiscard(Effect.flatMap(PluginManager, (m) => m.load("showcase"))).pipe(Layer.provideMerge(host))
const live = JobQueueLive({ concurrency: 2 }).pipe(Layer.provideMerge(loaded))

// Ten minutes: nothing finishes while the test looks.
const long = { instance: "showcase", action: "slow", input: { millis: 600_000 } }

// The journal, not the queue's memory, says when a job is running: that is what a crash leaves behind.
const pollRunning = (id) =>
  Effect.gen(function* () {
    const journal = yield* JobJournal
    for (;;) {
      const job = yield* journal.find(id)
      if (job?.status === "running") return
      yield* Effect.sleep(Duration.millis(20))
    }
  })

if (mode === "crash") {
  const count = Number(rest[0])
  await Effect.runPromise(
    Effect.gen(function* () {
      const queue = yield* JobQueue
      const manager = yield* PluginManager
      const keyed = yield* queue.submit({ ...long, priority: 9, idempotencyKey: "safe-to-rerun" })
      const unkeyed = yield* queue.submit({ ...long, priority: 9 })
      yield* pollRunning(keyed)
      yield* pollRunning(unkeyed)
      say(`running ${keyed} ${unkeyed}`)
      say(`workers ${(yield* manager.list).map((i) => i.pid).filter((p) => p !== undefined).join(" ")}`)
      for (let i = 0; i < count; i++) {
        const id = yield* queue.submit({ ...long, priority: i % 3 })
        say(`submitted ${id} ${i % 3}`)
      }
      say("all submitted")
      yield* Effect.never
    }).pipe(Effect.provide(live)),
  )
} else if (mode === "inspect") {
  const encode = Schema.encodeSync(Job)
  await Effect.runPromise(
    Effect.gen(function* () {
      const queue = yield* JobQueue
      const running = (yield* queue.running).map((j) => j.id)
      const pending = (yield* queue.pending).map((j) => j.id)
      const jobs = {}
      for (const id of rest) {
        const job = yield* queue.get(id)
        if (Option.isSome(job)) jobs[id] = encode(job.value)
      }
      say(JSON.stringify({ running, pending, jobs }))
    }).pipe(Effect.provide(live)),
  )
} else {
  process.stderr.write(`unknown mode ${mode}\n`)
  process.exitCode = 2
}
