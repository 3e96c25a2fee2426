import { Effect, Fiber, Option, Queue } from "effect"
import type { SequenceId } from "@plinth/domain"
import type { ManagedInstance } from "../manager/PluginManager.js"
import type { Entry, LaneState, QueueState, SequenceHooks } from "./QueueState.js"
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
    // Steps, not a generator: every step of a job's way through its lane is a share of its host CPU (bench/queue.mjs).
    const next = Effect.flatMap(nextToken, () => {
      const entry = pending.shift()
      if (entry === undefined) return Effect.void
      return Effect.matchEffect(manager.get(entry.job.instance), {
        onFailure: () => {
          // Cancelled while the lane looked its instance up: it has already ended.
          if (!entry.finished && !entry.cancelling) hold(entry)
          return Effect.void
        },
        onSuccess: (managed) => (entry.finished || entry.cancelling ? Effect.void : start(state, entry, managed)),
      })
    })
    /*
     * Without a journal, not Effect.forever, which yields to the scheduler
     * after every job: a lane waits for its worker's reply (or for a token) on
     * every job anyway, and a yield here only delays the next job's call by a
     * scheduler round. The fiber's operation budget still preempts a lane
     * that never waits. With one, the yield lets more jobs arrive before the
     * lane decides whether its carried record waits for the next one.
     */
    const loop: Effect.Effect<never> = Option.isNone(journal) ? Effect.flatMap(next, () => loop) : Effect.forever(next)
    return loop.pipe(
      // Interrupted (a cancel, or shutdown) while carrying a finished job: it is journaled and announced all the same.
      Effect.ensuring(flushCarry(state)),
    )
  }
  /** Runs the job the lane took (its instance loaded, the job not cancelled meanwhile). */
  const start = (state: LaneState, entry: Entry, managed: ManagedInstance): Effect.Effect<void> => {
    changeState(entry, "running", { startedAt: Date.now() })
    const sequence = entry.job.sequence
    return sequence === undefined ? run(state, entry, managed) : Effect.zipRight(sequenceStepRunning(sequence.id), run(state, entry, managed))
  }

  /** Cancelled meanwhile (its sequence being journaled, say), the job has been ended by its canceller: no call starts. */
  const run = (state: LaneState, entry: Entry, managed: ManagedInstance): Effect.Effect<void> =>
    Effect.withFiberRuntime<void>((fiber) => {
      if (entry.cancelling) return Effect.void
      entry.fiber = fiber as Fiber.RuntimeFiber<void>
      return Effect.flatMap(runJob(state, entry, managed), () =>
        // Its canceller interrupts this lane and starts another: wait for it here, so this lane takes nothing else.
        entry.cancelling ? Effect.never : Effect.void,
      )
    })

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
