import { Effect, type Exit } from "effect"

/*
 * A result delivered once to whoever waits for it: Deferred's contract, for
 * the paths that make one per job. `Deferred.unsafeMake` copies Effect's
 * prototype into each instance it makes: measured here, making one costs ~7 µs
 * and making, completing and awaiting one ~10 µs, against ~1.5 µs for this,
 * and a journaled job made three.
 */
export interface OneShot<A, E = never> {
  /** Waits for the result (at once if it is in); interrupting a waiter only ends its own wait. */
  readonly await: Effect.Effect<A, E>
  /** Delivers the result to every waiter, now and later; a second call does nothing. */
  readonly done: (exit: Exit.Exit<A, E>) => void
}

export const makeOneShot = <A, E = never>(): OneShot<A, E> => {
  let result: Exit.Exit<A, E> | undefined
  let waiters: Array<(exit: Exit.Exit<A, E>) => void> | undefined
  const forget = (resume: (exit: Exit.Exit<A, E>) => void) =>
    Effect.sync(() => {
      const at = waiters?.indexOf(resume) ?? -1
      if (at >= 0) waiters!.splice(at, 1)
    })
  return {
    await: Effect.async<A, E>((resume) => {
      if (result !== undefined) return resume(result)
      ;(waiters ??= []).push(resume)
      return forget(resume)
    }),
    done: (exit) => {
      if (result !== undefined) return
      result = exit
      const waiting = waiters
      waiters = undefined
      if (waiting !== undefined) for (const resume of waiting) resume(exit)
    },
  }
}
