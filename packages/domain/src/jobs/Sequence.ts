import { Schema } from "effect"
import { JobError } from "../ErrorTaxonomy.js"
import { JobId, JobStatus, SequenceId } from "./Job.js"

/*
 * A sequence: steps run one after another, each as a job. "failFast" stops at
 * the first step that does not complete and ends failed; "bestEffort" runs
 * every step and ends completed, each step's outcome in its results.
 */

export const SequenceMode = Schema.Literal("failFast", "bestEffort")
export type SequenceMode = typeof SequenceMode.Type

export const SequenceStep = Schema.Struct({
  instance: Schema.String,
  action: Schema.String,
  input: Schema.Unknown,
  timeoutMillis: Schema.optional(Schema.Number),
  idempotencyKey: Schema.optional(Schema.String),
})
export type SequenceStep = typeof SequenceStep.Type

export const StepResult = Schema.Struct({
  index: Schema.Number,
  job: JobId,
  status: JobStatus,
  result: Schema.optional(Schema.Unknown),
  error: Schema.optional(JobError),
})
export type StepResult = typeof StepResult.Type

export const JobSequence = Schema.Struct({
  id: SequenceId,
  mode: SequenceMode,
  priority: Schema.Number,
  steps: Schema.Array(SequenceStep),
  status: JobStatus,
  /** The step now running or next to run. */
  current: Schema.Number,
  /** One per step that has ended, in step order. */
  results: Schema.Array(StepResult),
  submittedAt: Schema.Number,
  finishedAt: Schema.optional(Schema.Number),
})
export type JobSequence = typeof JobSequence.Type
