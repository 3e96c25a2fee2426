import { Duration, Effect } from "effect"

/*
 * Timers for any length of time. Node fires a setTimeout of 2^31 ms or more
 * (about 24.8 days) at once, with only a warning, and Effect's clock treats
 * such a sleep as forever; a `--timeout 597h` must do neither. Long delays are
 * chained in steps Node accepts.
 */

/** The longest delay setTimeout honours. */
export const MAX_TIMER_MILLIS = 2 ** 31 - 1

/**
 * A timeout's length in milliseconds, or undefined when there is none: an
 * infinite duration is no timeout, not one that fires at once.
 */
export const timeoutMillisOf = (timeout: Duration.DurationInput | undefined): number | undefined => {
  if (timeout === undefined) return undefined
  const millis = Duration.toMillis(timeout)
  return Number.isFinite(millis) ? Math.max(0, millis) : undefined
}

/** Like setTimeout, for any delay; returns the cancel function. `maxStep` exists for tests. */
export const setLongTimeout = (fire: () => void, millis: number, maxStep = MAX_TIMER_MILLIS): (() => void) => {
  let left = millis
  let timer: ReturnType<typeof setTimeout>
  const arm = () => {
    const step = Math.min(left, maxStep)
    left -= step
    timer = setTimeout(() => (left > 0 ? arm() : fire()), step)
  }
  arm()
  return () => clearTimeout(timer)
}

/** Fails with `onTimeout()` once `millis` have passed, however long that is. */
export const failAfter = <E>(millis: number, onTimeout: () => E): Effect.Effect<never, E> =>
  Effect.async<never, E>((resume) => {
    const cancel = setLongTimeout(() => resume(Effect.fail(onTimeout())), millis)
    return Effect.sync(cancel)
  })

/**
 * Runs `effect` for at most `millis`: past that it is interrupted (a call's
 * own interruption cancels it in the worker) and the result is `onTimeout()`.
 */
export const within = <A, E, E2>(effect: Effect.Effect<A, E>, millis: number, onTimeout: () => E2): Effect.Effect<A, E | E2> =>
  Effect.raceFirst(effect, failAfter(millis, onTimeout))

/**
 * An idle timeout of any length: `touch` restarts the wait, `expired` fails
 * with `onTimeout()` once `millis` pass without one.
 */
export const idleTimer = <E>(millis: number, onTimeout: () => E) => {
  let last = Date.now()
  return {
    touch: (): void => {
      last = Date.now()
    },
    expired: Effect.async<never, E>((resume) => {
      let cancel: () => void
      const check = () => {
        const quiet = Date.now() - last
        if (quiet >= millis) resume(Effect.fail(onTimeout()))
        else cancel = setLongTimeout(check, millis - quiet)
      }
      cancel = setLongTimeout(check, Math.max(0, millis - (Date.now() - last)))
      return Effect.sync(() => cancel())
    }),
  }
}
