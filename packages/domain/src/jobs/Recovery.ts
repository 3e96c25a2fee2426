import { JobError } from "../ErrorTaxonomy.js"
import type { Job } from "./Job.js"
import { JobInterrupted } from "./JobErrors.js"

/*
 * What becomes of a job the host was running when it stopped (a crash, or a
 * clean shutdown that interrupted it): run again when its idempotency key
 * says a re-run is safe, otherwise failed with a typed JobInterrupted. Pure:
 * the queue applies it at start-up (journal recovery) and at shutdown.
 */

export type InterruptedOutcome =
  | { readonly _tag: "requeue"; readonly job: Job }
  | { readonly _tag: "failed"; readonly job: Job }

/** JobInterrupted as a job's error: transient (the host, not the job, stopped), but not retriable without a key. */
export const interruptedJobError = (job: Job, plugin: string, now: number): JobError => {
  const error = new JobInterrupted({ job: job.id, instance: job.instance, action: job.action })
  return new JobError({
    category: "transient",
    tag: error._tag,
    message: error.message,
    retriable: false,
    plugin,
    instance: job.instance,
    time: new Date(now),
  })
}

/** A pending job stays pending; a running one is re-queued (pending again, its run state cleared) or ends failed. */
export const afterInterruption = (job: Job, plugin: string, now: number): InterruptedOutcome => {
  if (job.status !== "running") return { _tag: "requeue", job }
  if (job.idempotencyKey !== undefined) {
    const { startedAt: _s, cancelPhase: _c, cancelRequestedAt: _r, blockReason: _b, statusMessage: _m, ...rest } = job
    return { _tag: "requeue", job: { ...rest, status: "pending", progress: -1 } }
  }
  const { blockReason: _b, ...rest } = job
  return { _tag: "failed", job: { ...rest, status: "failed", finishedAt: now, error: interruptedJobError(job, plugin, now) } }
}
