import { Effect } from "effect"
import { HashingProgress, hashingProgressListener, type HashingProgressSnapshot } from "@plinth/runtime"
import type { OutputFormat } from "./Output.js"

/*
 * Hashing progress for people at a terminal: one line on stderr, rewritten in
 * place (`\r`) at most ten times a second, erased when the work ends. Nothing
 * is drawn when stderr is not a terminal or the output is JSON.
 */

const MiB = 1024 * 1024

/** At most this many redraws a second. */
export const PROGRESS_REDRAW_MS = 100

const grouped = (n: number) => n.toLocaleString("en-US")

/** `hashing 12,345/20,000 files (61%)  48.2 MiB/s`; the rate is left out until time has passed. */
export const renderProgressLine = (snapshot: HashingProgressSnapshot, elapsedMs: number): string => {
  const percent = snapshot.filesTotal === 0 ? 0 : Math.floor((snapshot.filesHashed / snapshot.filesTotal) * 100)
  const rate = elapsedMs > 0 ? `  ${(snapshot.bytesHashed / MiB / (elapsedMs / 1000)).toFixed(1)} MiB/s` : ""
  return `hashing ${grouped(snapshot.filesHashed)}/${grouped(snapshot.filesTotal)} files (${percent}%)${rate}`
}

/** Erases the current terminal line: carriage return, then clear to the end of the line. */
const ERASE_LINE = "\r\u001b[K"

export interface ProgressDisplay {
  readonly update: (snapshot: HashingProgressSnapshot) => void
  /** Erases the line, if one was drawn. */
  readonly clear: () => void
}

/**
 * A throttled one-line display. The first update draws at once; later ones
 * only when `PROGRESS_REDRAW_MS` has passed since the last drawing. `write`
 * must be synchronous (a TTY stream is): hashing blocks the event loop.
 */
export const makeProgressDisplay = (write: (text: string) => void, now: () => number = () => performance.now()): ProgressDisplay => {
  let started: number | undefined
  let lastDrawn: number | undefined
  let drawn = false
  return {
    update: (snapshot) => {
      const at = now()
      started ??= at
      if (lastDrawn !== undefined && at - lastDrawn < PROGRESS_REDRAW_MS) return
      lastDrawn = at
      drawn = true
      write(`${ERASE_LINE}${renderProgressLine(snapshot, at - started)}`)
    },
    clear: () => {
      if (drawn) write(ERASE_LINE)
      drawn = false
    },
  }
}

/** Whether progress is drawn: for people, on a terminal. */
export const showsProgress = (format: OutputFormat, stderr: { readonly isTTY?: boolean } = process.stderr): boolean =>
  format === "human" && stderr.isTTY === true

/**
 * Runs `effect` with hashing progress drawn on stderr when `showsProgress`;
 * the line is erased before the effect's result is reported, however it ends.
 */
export const withHashingProgress =
  (format: OutputFormat) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
    if (!showsProgress(format)) return effect
    return Effect.acquireUseRelease(
      Effect.sync(() => makeProgressDisplay((text) => process.stderr.write(text))),
      (display) => Effect.provideService(effect, HashingProgress, hashingProgressListener(display.update)),
      (display) => Effect.sync(display.clear),
    )
  }
