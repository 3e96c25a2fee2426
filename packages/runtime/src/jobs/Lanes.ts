import { Effect, Fiber, Option, Queue } from "effect"
import type { SequenceId } from "@plinth/domain"
import type { LaneState, QueueState, SequenceHooks } from "./QueueState.js"
import type { Attempts } from "./Attempts.js"
import type { LaneCarry } from "./LaneCarry.js"
import type { PendingOrder } from "./PendingOrder.js"

/* The lanes: `concurrency` fibers, each taking the first pending job and running it. */
export const makeLanes = (q: QueueState, order: PendingOrder, attempts: Attempts, carry: LaneCarry, hooks: SequenceHooks) => {
  const { manager, journal, pending, tokens, lanes, changeState } = q

  const { hold } = order
  const { runJob } = attempts
  const { flushCarry } = carry
  const sequenceStepRunning = (id: SequenceId) => hooks.sequenceStepRunning(id)

  /**
   * A lane: takes a token, then the first pending job, and runs it; then the
   * next. Cancelling a running job interrupts its lane (that is what stops
   * the call), and the canceller starts a new lane once the cancellation is
   * over: a forced cancellation keeps its lane's place until the fresh worker
   * is up, so the next job does not start on a dying worker.
   */
  const makeLane = (): Effect.Effect<void> => {
    const state: LaneState = { carry: undefined }
    // Carrying a finished record, the lane takes a job only if one is there; else it writes the record before it waits.
    const nextToken = Option.isNone(journal)
      ? Queue.take(tokens)
      : Effect.suspend(() =>
          state.carry === undefined
            ? Queue.take(tokens)
            : Effect.flatMap(Queue.poll(tokens), (token) => (Option.isSome(token) ? Effect.void : Effect.zipRight(flushCarry(state), Queue.take(tokens)))),
        )
    return Effect.forever(
      Effect.gen(function* () {
        yield* nextToken
        const entry = pending.shift()
        if (entry === undefined) return
        const managed = yield* Effect.option(manager.get(entry.job.instance))
        // Cancelled while the lane looked its instance up: it has already ended.
        if (entry.finished || entry.cancelling) return
        if (Option.isNone(managed)) return hold(entry)
        changeState(entry, "running", { startedAt: Date.now() })
        const sequence = entry.job.sequence
        if (sequence !== undefined) yield* sequenceStepRunning(sequence.id)
        // Cancelled while its sequence was being journaled: the canceller has ended it; no call starts.
        if (entry.cancelling) return
        entry.fiber = yield* Effect.withFiberRuntime<Fiber.RuntimeFiber<void>>((fiber) => Effect.succeed(fiber as Fiber.RuntimeFiber<void>))
        yield* runJob(state, entry, managed.value)
        // Its canceller interrupts this lane and starts another: wait for it here, so this lane takes nothing else.
        if (entry.cancelling) yield* Effect.never
      }),
    ).pipe(
      // Interrupted (a cancel, or shutdown) while carrying a finished job: it is journaled and announced all the same.
      Effect.ensuring(flushCarry(state)),
    )
  }
  const startLane = Effect.suspend(() => {
    if (q.closing) return Effect.void
    return Effect.map(Effect.forkDaemon(makeLane()), (fiber) => {
      lanes.add(fiber)
      fiber.addObserver(() => lanes.delete(fiber))
    })
  })

  return { startLane }
}

export type Lanes = ReturnType<typeof makeLanes>
