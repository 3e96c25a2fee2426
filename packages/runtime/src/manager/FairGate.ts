import { Effect } from "effect"

/*
 * A concurrency cap with a bounded FIFO wait. Effect's Semaphore wakes its
 * waiters in order but lets a newcomer take a freed permit before the woken
 * waiter runs, so it does not promise order; here a finishing call hands its
 * permit straight to the oldest waiter.
 */

export interface FairGate {
  /** Runs `effect` once a permit is free; waits in FIFO order; fails with `full()` when `maxWaiting` already wait. */
  readonly run: <A, E, R, F>(effect: Effect.Effect<A, E, R>, full: () => F) => Effect.Effect<A, E | F, R>
  readonly active: () => number
  readonly waiting: () => number
  /**
   * Takes a permit at once if one is free and nobody waits (the common case,
   * without `run`'s wait machinery); the caller must `release` it, however its
   * work ends: take it where it cannot be interrupted before that is arranged.
   */
  readonly tryTake: () => boolean
  readonly release: () => void
}

interface Waiter {
  granted: boolean
  readonly wake: () => void
}

export const makeFairGate = (permits: number, maxWaiting: number): FairGate => {
  let active = 0
  const queue: Array<Waiter> = []

  const release = () => {
    const next = queue.shift()
    if (next === undefined) active--
    else next.wake()
  }

  const take = <F>(full: () => F): Effect.Effect<void, F> =>
    Effect.async<void, F>((resume) => {
      if (active < permits && queue.length === 0) {
        active++
        return resume(Effect.void)
      }
      if (queue.length >= maxWaiting) return resume(Effect.fail(full()))
      const waiter: Waiter = {
        granted: false,
        wake: () => {
          waiter.granted = true
          resume(Effect.void)
        },
      }
      queue.push(waiter)
      return Effect.sync(() => {
        const index = queue.indexOf(waiter)
        if (index >= 0) queue.splice(index, 1)
        // Handed a permit as it gave up: pass it on.
        else if (waiter.granted) release()
      })
    })

  return {
    run: (effect, full) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.zipRight(restore(take(full)), Effect.ensuring(restore(effect), Effect.sync(release))),
      ),
    active: () => active,
    waiting: () => queue.length,
    tryTake: () => {
      if (active >= permits || queue.length > 0) return false
      active++
      return true
    },
    release,
  }
}
