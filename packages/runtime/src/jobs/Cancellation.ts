import { Deferred, Duration, Effect, Fiber } from "effect"
import type { JobId } from "@plinth/domain"
import { KILL_MARGIN_MILLIS, type Entry, type QueueState } from "./QueueState.js"
import type { FinishedJobs } from "./FinishedJobs.js"
import type { Lanes } from "./Lanes.js"
import type { PendingOrder } from "./PendingOrder.js"

/* Cancelling a job: a pending one at once, a running one through its cancel phases. */
export const makeCancellation = (q: QueueState, order: PendingOrder, finished: FinishedJobs, lanes: Lanes) => {
  const { manager, live, cancelTimeoutMillis, setJob, setPhase } = q

  const { removePending } = order
  const { finish } = finished
  const { startLane } = lanes

  /**
   * A running job: interrupt its call (the worker is told to stop, with a
   * grace of `cancelTimeout` for this call); if the worker reports the call
   * stopped, the job ends cancelled after "cooperative" alone. If it does not
   * (the worker was killed when the grace ran out, or was already gone), the
   * phases go on: "force", "reloading" while the manager gives the instance a
   * fresh worker, then "completed".
   */
  const cancelRunning = (entry: Entry) =>
    Effect.gen(function* () {
      setJob(entry, { ...entry.job, cancelRequestedAt: Date.now() })
      setPhase(entry, "cooperative")
      const ownLane = entry.fiber
      if (ownLane !== undefined) yield* Fiber.interrupt(ownLane)
      const outcome = entry.cancelStarted && entry.cancelSettled !== undefined
        ? yield* Deferred.await(entry.cancelSettled).pipe(
            Effect.timeoutTo({ duration: Duration.millis(cancelTimeoutMillis + KILL_MARGIN_MILLIS), onTimeout: () => "killed" as const, onSuccess: (o) => o }),
          )
        : ("stopped" as const)
      if (outcome === "killed") {
        setPhase(entry, "force")
        setPhase(entry, "reloading")
        yield* manager.reload(entry.job.instance).pipe(
          Effect.catchAll((error) => Effect.logWarning(`after cancelling job ${entry.job.id}, instance '${entry.job.instance}' could not be reloaded: ${error.message}`)),
        )
      }
      setPhase(entry, "completed")
      yield* finish(entry, "cancelled")
      // The job's lane was interrupted to stop its call: its place is free again now.
      if (ownLane !== undefined) yield* startLane
    })

  const cancelEntry = (entry: Entry): Effect.Effect<boolean> =>
    Effect.suspend(() => {
      if (entry.finished || entry.cancelling) return Effect.succeed(false)
      entry.cancelling = true
      if (entry.job.status === "pending") {
        // Out of the run order (or of the held jobs); a lane may also have just taken it, and checks `cancelling`.
        removePending(entry)
        return Effect.as(finish(entry, "cancelled", { cancelRequestedAt: Date.now() }), true)
      }
      return Effect.map(Effect.forkDaemon(cancelRunning(entry)), (fiber) => {
        entry.canceller = fiber
        return true
      })
    })

  const cancel = (id: JobId) =>
    Effect.suspend(() => {
      const entry = live.get(id)
      return entry === undefined ? Effect.succeed(false) : cancelEntry(entry)
    })

  return { cancelEntry, cancel }
}

export type Cancellation = ReturnType<typeof makeCancellation>
