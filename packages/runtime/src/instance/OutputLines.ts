import { stripVTControlCharacters } from "node:util"

/*
 * A worker's stdout and stderr as lines a host can keep and show (a job's log,
 * a dashboard). A plugin may print gigabytes: nothing here grows with what it
 * writes. A line longer than `maxLineChars` is kept cut (and marked), the rest
 * of it skipped; lines past the rate limit are dropped and counted, and the
 * count is reported as a line of its own once lines are kept again.
 */

export interface WorkerOutputLine {
  /** When the host read it, ms since the epoch. */
  readonly at: number
  readonly stream: "stdout" | "stderr"
  /** The text, terminal control sequences removed, without its newline. */
  readonly line: string
  /** The process the host spawned (under bubblewrap, bwrap's). */
  readonly pid: number | undefined
  /** True when the line was longer than the cap and only its start is kept. */
  readonly cut?: true
}

export interface OutputLimits {
  /** Characters kept of one line; default 8192. */
  readonly maxLineChars: number
  /** Lines kept per second, both streams together, after a burst of `burst`; default 1000. */
  readonly linesPerSecond: number
  readonly burst: number
}

export const defaultOutputLimits: OutputLimits = { maxLineChars: 8192, linesPerSecond: 1000, burst: 2000 }

/** The text of a line as kept: no carriage return before the newline, no escape sequences. */
export const cleanLine = (raw: string): string => stripVTControlCharacters(raw.endsWith("\r") ? raw.slice(0, -1) : raw)

export const droppedNotice = (count: number): string =>
  `[plinth] ${count} line${count === 1 ? "" : "s"} of output dropped: the worker wrote faster than the host keeps lines`

/**
 * Splits the text of both streams of one process into lines and admits them
 * through one token bucket. `now` is the clock (ms), passed in so tests can drive it.
 */
export const makeLineCapture = (
  pid: number | undefined,
  emit: (line: WorkerOutputLine) => void,
  limits: OutputLimits = defaultOutputLimits,
  now: () => number = Date.now,
) => {
  let tokens = limits.burst
  let refilled = now()
  let dropped = 0
  let droppedTotal = 0

  const admit = (stream: WorkerOutputLine["stream"], text: string, cut: boolean) => {
    const at = now()
    tokens = Math.min(limits.burst, tokens + ((at - refilled) * limits.linesPerSecond) / 1000)
    refilled = at
    if (tokens < 1) {
      dropped++
      droppedTotal++
      return
    }
    tokens--
    if (dropped > 0) {
      emit({ at, stream, line: droppedNotice(dropped), pid })
      dropped = 0
    }
    const line = cleanLine(text)
    emit(cut ? { at, stream, line, pid, cut: true } : { at, stream, line, pid })
  }

  const splitter = (stream: WorkerOutputLine["stream"]) => {
    let partial = ""
    /** The start of an over-long line was kept: skip to its end. */
    let skipping = false
    return {
      push: (chunk: string) => {
        let start = 0
        for (;;) {
          const newline = chunk.indexOf("\n", start)
          if (newline < 0) break
          if (skipping) skipping = false
          else {
            const text = partial + chunk.slice(start, newline)
            if (text.length > limits.maxLineChars) admit(stream, text.slice(0, limits.maxLineChars), true)
            else admit(stream, text, false)
          }
          partial = ""
          start = newline + 1
        }
        if (start < chunk.length && !skipping) {
          partial += chunk.slice(start)
          if (partial.length > limits.maxLineChars) {
            admit(stream, partial.slice(0, limits.maxLineChars), true)
            partial = ""
            skipping = true
          }
        }
      },
      /** The unterminated last line, when the stream ends. */
      end: () => {
        if (partial.length > 0 && !skipping) admit(stream, partial, false)
        partial = ""
        skipping = false
      },
    }
  }

  return {
    stdout: splitter("stdout"),
    stderr: splitter("stderr"),
    /** Reports lines still uncounted as dropped, once the process has ended. */
    close: () => {
      if (dropped > 0) emit({ at: now(), stream: "stderr", line: droppedNotice(dropped), pid })
      dropped = 0
    },
    /** Lines dropped so far by the rate limit. */
    droppedLines: () => droppedTotal,
  }
}
