import { Schema } from "effect"
import { CancelPhase, JobId, JobStatus, ResourceSnapshot, SequenceId } from "./Job.js"

/*
 * What the queue tells subscribers, as it happens. Every event names its job
 * (and its sequence, when the job is a step of one), so one publisher can
 * serve per-job, per-sequence and all-events subscribers.
 */

const common = { job: JobId, sequence: Schema.optional(SequenceId), at: Schema.Number }

/** A job entered the queue (status pending). */
export const JobSubmitted = Schema.TaggedStruct("submitted", { ...common, instance: Schema.String, action: Schema.String, priority: Schema.Number })
/** pending → running, running → completed / failed / cancelled, pending → cancelled. */
export const JobStateChanged = Schema.TaggedStruct("stateChanged", { ...common, from: JobStatus, to: JobStatus })
/** Sent only when the fraction or the message differs from the last one. */
export const JobProgressChanged = Schema.TaggedStruct("progressChanged", { ...common, progress: Schema.Number, message: Schema.optional(Schema.String) })
export const JobCancelPhaseChanged = Schema.TaggedStruct("cancelPhaseChanged", { ...common, from: Schema.optional(CancelPhase), to: CancelPhase })
/** The job waits for room (the manager's scheduling policy), or stopped waiting (no reason). */
export const JobBlockReasonChanged = Schema.TaggedStruct("blockReasonChanged", { ...common, reason: Schema.optional(Schema.String) })
/** Another attempt starts: `attempt` is 2 for the first retry; `by` says who retries. */
export const JobRetryStarted = Schema.TaggedStruct("retryStarted", {
  ...common,
  attempt: Schema.Number,
  by: Schema.Literal("queue", "eviction"),
  failure: Schema.String,
  delayMillis: Schema.Number,
})
export const JobPriorityChanged = Schema.TaggedStruct("priorityChanged", { ...common, from: Schema.Number, to: Schema.Number })
export const JobResourceSnapshot = Schema.TaggedStruct("resourceSnapshot", { ...common, snapshot: ResourceSnapshot })
/** A step of a sequence ended; `status` is the sequence's status after it. */
export const SequenceAdvanced = Schema.TaggedStruct("sequenceAdvanced", {
  ...common,
  sequence: SequenceId,
  index: Schema.Number,
  stepStatus: JobStatus,
  status: JobStatus,
})

export const JobEvent = Schema.Union(
  JobSubmitted,
  JobStateChanged,
  JobProgressChanged,
  JobCancelPhaseChanged,
  JobBlockReasonChanged,
  JobRetryStarted,
  JobPriorityChanged,
  JobResourceSnapshot,
  SequenceAdvanced,
)
export type JobEvent = typeof JobEvent.Type
