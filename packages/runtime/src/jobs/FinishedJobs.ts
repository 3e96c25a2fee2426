import { Effect, Exit, Option } from "effect"
import type { Job, JobLogLine } from "@plinth/domain"
import { noLines, type Carried, type Entry, type QueueState, type SequenceHooks } from "./QueueState.js"
import type { Watching } from "./Watching.js"

/** The job without its block reason; the job itself when it has none (a rest pattern copies, and is slow in V8, for every job). */
const withoutBlockReason = (job: Job): Job => {
  if (!("blockReason" in job)) return job
  const { blockReason: _b, ...rest } = job
  return rest
}

/* Finished jobs: a job's one end (journaled, counted, announced, handed to its waiters and its sequence), the history and the archive. */
export const makeFinishedJobs = (q: QueueState, watching: Watching, hooks: SequenceHooks) => {
  const { journal, live, history, archive, keys, maxHistory, archiveLimit, counts, throughput, heard, publish, common, journalWrite } = q

  const { unwatch } = watching
  const sequenceStepEnded = (job: Job) => hooks.sequenceStepEnded(job)

  const archiveJob = (job: Job, logs: ReadonlyArray<JobLogLine>) => {
    history.push(job)
    if (history.length > 2 * maxHistory + 64) history.splice(0, history.length - maxHistory)
    archive.set(job.id, { job, logs })
    if (archive.size > archiveLimit + 64) {
      // Evicted in batches, oldest first (a Map iterates in insertion order).
      for (const [id, { job: gone }] of archive) {
        if (archive.size <= archiveLimit) break
        archive.delete(id)
        if (gone.idempotencyKey !== undefined && keys.get(gone.idempotencyKey) === gone.id) keys.delete(gone.idempotencyKey)
      }
    }
  }

  /**
   * Ends a job once: journaled first, then counted, announced, handed to
   * its waiters and to its sequence.
   */
  const finish = (entry: Entry, to: "completed" | "failed" | "cancelled", patch: Partial<Job> = {}): Effect.Effect<void> =>
    Effect.suspend(() => finishMarked(entry, to, patch))

  /** Marks the job finished at once (no one may cancel or reorder it from here), and returns what journals and announces it. To be called as it ends. */
  const finishMarked = (entry: Entry, to: "completed" | "failed" | "cancelled", patch: Partial<Job>): Effect.Effect<void> => {
    const from = entry.job.status
    const job = markFinished(entry, to, patch)
    if (job === undefined) return Effect.void
    // Without a journal there is nothing to wait for: announced now, not one more step later.
    if (Option.isNone(journal)) return settle(entry, job, from, to)
    return Effect.zipRight(journalWrite([job]), Effect.suspend(() => settle(entry, job, from, to)))
  }

  /** Marks the job finished (see finishMarked); its final record and what announces it, to run once that record is journaled. Undefined when it had already ended. */
  const finishRecord = (entry: Entry, to: "completed" | "failed" | "cancelled", patch: Partial<Job>): Carried | undefined => {
    const from = entry.job.status
    const job = markFinished(entry, to, patch)
    return job === undefined ? undefined : { job, settle: Effect.suspend(() => settle(entry, job, from, to)) }
  }

  /** The job's final record, set on its entry; undefined when it had already ended. */
  const markFinished = (entry: Entry, to: "completed" | "failed" | "cancelled", patch: Partial<Job>): Job | undefined => {
    if (entry.finished) return undefined
    entry.finished = true
    unwatch(entry)
    const job: Job = { ...withoutBlockReason(entry.job), ...patch, status: to, finishedAt: Date.now() }
    entry.job = job
    return job
  }

  /** Counts, archives and announces the finished job, and hands it to its waiters; then its sequence hears of it. */
  const settle = (entry: Entry, job: Job, from: Job["status"], to: "completed" | "failed" | "cancelled"): Effect.Effect<void> => {
    live.delete(job.id)
    archiveJob(job, entry.logs ?? noLines)
    counts[to]++
    throughput.record(job.finishedAt!)
    if (heard()) publish({ _tag: "stateChanged", ...common(job), from, to })
    entry.done?.done(Exit.succeed(job))
    return job.sequence === undefined ? Effect.void : sequenceStepEnded(job)
  }

  return { archiveJob, finish, finishMarked, finishRecord }
}

export type FinishedJobs = ReturnType<typeof makeFinishedJobs>
