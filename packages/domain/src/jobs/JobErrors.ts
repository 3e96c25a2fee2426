import { Schema } from "effect"

/** The host stopped while the job ran, and the job has no idempotency key saying a re-run is safe. */
export class JobInterrupted extends Schema.TaggedError<JobInterrupted>()("JobInterrupted", {
  job: Schema.String,
  instance: Schema.String,
  action: Schema.String,
}) {
  override get message() {
    return `job ${this.job} (${this.instance} ${this.action}) was running when its host stopped; it was not run again because it has no idempotency key`
  }
}

/** No job (or sequence) with this id is known to the queue, nor to its journal. */
export class JobNotFound extends Schema.TaggedError<JobNotFound>()("JobNotFound", { job: Schema.String }) {
  override get message() {
    return `no job ${this.job}: check the id with 'plinth jobs list'`
  }
}

/** A submission the queue refuses before it is queued: unknown instance or action, a bad priority or timeout. */
export class JobRefused extends Schema.TaggedError<JobRefused>()("JobRefused", { reason: Schema.String }) {
  override get message() {
    return `job refused: ${this.reason}`
  }
}
