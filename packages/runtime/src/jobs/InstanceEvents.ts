import { Effect, Queue } from "effect"
import { describeBlockReason } from "@plinth/domain"
import type { QueueState } from "./QueueState.js"
import type { PendingOrder } from "./PendingOrder.js"

/* The manager's events for jobs waiting to start: a loaded instance releases its held jobs; an admission block becomes their block reason. */
export const makeInstanceEvents = (q: QueueState, order: PendingOrder) => {
  const { manager, live, held, setBlockReason } = q

  const { release } = order

  /** Follows the manager's events in the queue's scope. */
  const follow = Effect.gen(function* () {
    const managerEvents = yield* manager.subscribe
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.flatMap(Queue.take(managerEvents), (event) =>
          Effect.sync(() => {
            if (event._tag === "loaded") return release(event.instance)
            if (event._tag !== "admissionBlocked") return
            const reason = `instance '${event.instance}' waits to start: ${describeBlockReason(event.reason)}`
            for (const entry of live.values()) {
              if (entry.job.status === "running" && !entry.callStarted && !entry.cancelling && entry.job.instance === event.instance) setBlockReason(entry, reason)
            }
            // Jobs held for an instance being loaded wait for the same room.
            for (const entry of held.get(event.instance) ?? []) setBlockReason(entry, reason)
          }),
        ),
      ),
    )
  })

  return { follow }
}

export type InstanceEvents = ReturnType<typeof makeInstanceEvents>
