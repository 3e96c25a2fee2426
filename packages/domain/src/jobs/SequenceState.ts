import { isTerminal, type JobStatus, type SequenceId } from "./Job.js"
import type { JobSequence, SequenceMode, SequenceStep, StepResult } from "./Sequence.js"

/*
 * A sequence's state transitions, pure: the queue runs one step's job at a
 * time and asks these what the sequence becomes when a step ends and which
 * step (if any) runs next. "failFast" stops at the first step that does not
 * complete (failed, or cancelled when the step was cancelled); "bestEffort"
 * runs every step and ends completed, each outcome in its results.
 */

export const newSequence = (
  id: SequenceId,
  steps: ReadonlyArray<SequenceStep>,
  mode: SequenceMode,
  priority: number,
  now: number,
): JobSequence =>
  steps.length === 0
    ? { id, mode, priority, steps, status: "completed", current: 0, results: [], submittedAt: now, finishedAt: now }
    : { id, mode, priority, steps, status: "pending", current: 0, results: [], submittedAt: now }

/** The sequence once its current step's job runs. */
export const stepStarted = (sequence: JobSequence): JobSequence =>
  sequence.status === "pending" ? { ...sequence, status: "running" } : sequence

export interface Advance {
  readonly sequence: JobSequence
  /** The index of the step to run next, when there is one. */
  readonly next: number | undefined
}

/**
 * The sequence after its current step ended with `result` (a terminal status).
 * A result for another step changes nothing; a cancelled sequence only records it.
 */
export const stepEnded = (sequence: JobSequence, result: StepResult, now: number): Advance => {
  if (result.index !== sequence.current || !isTerminal(result.status)) return { sequence, next: undefined }
  if (isTerminal(sequence.status)) {
    // A cancelled sequence still records how its running step ended; nothing runs after it.
    const owed = sequence.status === "cancelled" && sequence.results.length === result.index
    return { sequence: owed ? { ...sequence, results: [...sequence.results, result] } : sequence, next: undefined }
  }
  const results = [...sequence.results, result]
  const last = result.index + 1 >= sequence.steps.length
  const stops = sequence.mode === "failFast" && result.status !== "completed"
  if (stops || last) {
    const status: JobStatus = stops ? (result.status === "cancelled" ? "cancelled" : "failed") : "completed"
    return { sequence: { ...sequence, status, results, current: result.index, finishedAt: now }, next: undefined }
  }
  return { sequence: { ...sequence, status: "running", results, current: result.index + 1 }, next: result.index + 1 }
}

/** The sequence cancelled: no further step runs (the running step's own result, if it comes, is not added). */
export const sequenceCancelled = (sequence: JobSequence, now: number): JobSequence =>
  isTerminal(sequence.status) ? sequence : { ...sequence, status: "cancelled", finishedAt: now }
