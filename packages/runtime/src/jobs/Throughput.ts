/*
 * Jobs finished per second over the last minute: sixty one-second buckets, so
 * counting costs the same at ten jobs a second as at ten thousand.
 */

const WINDOW_SECONDS = 60

export interface Throughput {
  readonly record: (now: number) => void
  /** Finished per second over the last minute, or over the time since `since` when that is shorter (at least one second). */
  readonly rate: (now: number) => number
}

export const makeThroughput = (since: number): Throughput => {
  const counts = new Array<number>(WINDOW_SECONDS).fill(0)
  const seconds = new Array<number>(WINDOW_SECONDS).fill(-1)

  const record = (now: number) => {
    const second = Math.floor(now / 1000)
    const slot = second % WINDOW_SECONDS
    if (seconds[slot] !== second) {
      seconds[slot] = second
      counts[slot] = 0
    }
    counts[slot]!++
  }

  const rate = (now: number) => {
    const second = Math.floor(now / 1000)
    let total = 0
    for (let i = 0; i < WINDOW_SECONDS; i++) if (seconds[i]! > second - WINDOW_SECONDS && seconds[i]! <= second) total += counts[i]!
    const window = Math.min(WINDOW_SECONDS, Math.max(1, (now - since) / 1000))
    return total / window
  }

  return { record, rate }
}
