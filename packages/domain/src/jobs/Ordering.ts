/*
 * The order pending jobs run in: higher priority first, then first in, first
 * out. `seq` is the queue's submission counter (times tie within a
 * millisecond; a counter never does). Pure, so the rule is property-tested
 * apart from the queue that applies it.
 */

export interface RunKey {
  readonly priority: number
  /** Submission order: smaller was submitted earlier. */
  readonly seq: number
}

/** Negative when `a` runs before `b`. */
export const compareRunOrder = (a: RunKey, b: RunKey): number => (a.priority !== b.priority ? b.priority - a.priority : a.seq - b.seq)

/** The keys in the order they run. */
export const runOrder = <K extends RunKey>(keys: ReadonlyArray<K>): Array<K> => [...keys].sort(compareRunOrder)

/**
 * Where `key` goes in `sorted` (in run order) so that it stays in run order:
 * after every key that runs before it. Binary search, so a queue of many
 * thousands of pending jobs inserts without sorting.
 */
export const insertionIndexBy = <T>(sorted: ReadonlyArray<T>, key: RunKey, keyOf: (item: T) => RunKey): number => {
  let low = 0
  let high = sorted.length
  while (low < high) {
    const mid = (low + high) >>> 1
    if (compareRunOrder(keyOf(sorted[mid]!), key) < 0) low = mid + 1
    else high = mid
  }
  return low
}

export const insertionIndex = (sorted: ReadonlyArray<RunKey>, key: RunKey): number => insertionIndexBy(sorted, key, (k) => k)

/** Why a priority cannot be used, or undefined when it can: an integer, finite, within the safe range. */
export const priorityProblem = (priority: unknown): string | undefined =>
  typeof priority !== "number" || !Number.isSafeInteger(priority)
    ? `priority must be a whole number between ${Number.MIN_SAFE_INTEGER} and ${Number.MAX_SAFE_INTEGER}, got ${describe(priority)}`
    : undefined

/** Why a timeout (milliseconds) cannot be used, or undefined when it can: finite and above zero. */
export const timeoutProblem = (millis: number): string | undefined =>
  !Number.isFinite(millis) || millis <= 0 ? `timeout must be a finite duration above zero, got ${describe(millis)} ms` : undefined

const describe = (u: unknown): string => (typeof u === "number" ? String(u) : typeof u === "string" ? JSON.stringify(u) : typeof u)
