import { Deferred, Effect, Exit, Fiber, FiberId } from "effect"
import { afterInterruption } from "@plinth/domain"
import type { QueueState } from "./QueueState.js"
import type { FinishedJobs } from "./FinishedJobs.js"

/* A clean shutdown of the queue (its layer's finalizer). */
export const makeShutdown = (q: QueueState, finished: FinishedJobs) => {
  const { live, lanes, sequences, hub, journalWrite, heard, publish, common } = q

  const { finish } = finished

  /**
   * A clean shutdown: no new job starts; each running job's call is
   * interrupted and the job is re-queued (journaled pending) when its
   * idempotency key says a re-run is safe, otherwise it ends failed with
   * JobInterrupted, exactly as recovery after a crash would decide. Pending
   * jobs stay pending in the journal. Waiters on unfinished jobs are
   * interrupted; every subscription ends.
   */
  const shutdown = Effect.gen(function* () {
    q.closing = true
    const runningEntries = [...live.values()].filter((e) => e.job.status === "running" && !e.finished)
    // Stopping the lanes interrupts the running jobs' calls (each worker is told to stop).
    yield* Fiber.interruptAll([...lanes])
    for (const entry of runningEntries) {
      if (entry.finished) continue
      if (entry.cancelling) {
        // Its cancellation was asked for: it ends cancelled, not re-run.
        if (entry.canceller !== undefined) yield* Fiber.interrupt(entry.canceller)
        yield* finish(entry, "cancelled")
        continue
      }
      const outcome = afterInterruption(entry.job, entry.plugin, Date.now())
      if (outcome._tag === "failed") {
        yield* finish(entry, "failed", { error: outcome.job.error! })
      } else {
        entry.finished = true
        yield* journalWrite([outcome.job])
        if (heard()) publish({ _tag: "stateChanged", ...common(entry.job), from: "running", to: "pending" })
      }
    }
    for (const entry of live.values()) entry.done?.done(Exit.interrupt(FiberId.none))
    for (const entry of sequences.values()) yield* Deferred.interrupt(entry.done)
    yield* hub.shutdown
  })

  return { shutdown }
}

export type Shutdown = ReturnType<typeof makeShutdown>
