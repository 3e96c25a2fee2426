import { Effect, Option } from "effect"
import type { Job } from "@plinth/domain"
import type { JobJournal } from "../stores/JobJournal.js"
import type { StoreUnavailable } from "../stores/StoreErrors.js"
import type { Entry, LaneState, QueueState } from "./QueueState.js"
import type { FinishedJobs } from "./FinishedJobs.js"

/* A lane's finished job whose record rides with the lane's next journal write. */
export const makeLaneCarry = (q: QueueState, finished: FinishedJobs) => {
  const { journal, journalWrite } = q

  const { finishMarked, finishRecord } = finished

  /**
   * A job's own end, from its lane. With a journal, the lane carries the
   * finished record to its next write: when the next job is already
   * pending, its running record and this one are one write (one commit
   * round trip per job, not two, and no fiber per job end); when none is,
   * the lane writes it alone before it waits. Either way the job is
   * announced and handed to its waiters only once its record is committed.
   * It is marked finished at once, so no cancel can reach the lane's next job.
   */
  const ended = (lane: LaneState, entry: Entry, to: "completed" | "failed", patch: Partial<Job>): Effect.Effect<void> =>
    Effect.suspend(() => endedNow(lane, entry, to, patch))

  /** As `ended`, called as the job ends (a continuation's own step, not one more). */
  const endedNow = (lane: LaneState, entry: Entry, to: "completed" | "failed", patch: Partial<Job>): Effect.Effect<void> => {
    if (Option.isNone(journal)) return finishMarked(entry, to, patch)
    const record = finishRecord(entry, to, patch)
    if (record !== undefined) lane.carry = record
    return Effect.void
  }

  /** Journals and announces the lane's carried finished job, if any (uninterruptible: once taken, a carried job is always settled). */
  const flushCarry = (lane: LaneState): Effect.Effect<void> =>
    Effect.uninterruptible(
      Effect.suspend(() => {
        const carried = lane.carry
        if (carried === undefined) return Effect.void
        lane.carry = undefined
        return Effect.zipRight(journalWrite([carried.job]), carried.settle)
      }),
    )

  /**
   * The job's running record, with the lane's carried finished record when
   * there is one (then settled); the running record's write error, if any.
   * Uninterruptible: a cancel arriving meanwhile waits for one commit, and
   * the carried job is never left unannounced.
   */
  const recordRunning = (lane: LaneState, entry: Entry, journalService: JobJournal["Type"]): Effect.Effect<Option.Option<StoreUnavailable>> =>
    Effect.uninterruptible(
      Effect.suspend(() => {
        const carried = lane.carry
        lane.carry = undefined
        const written = (jobs: ReadonlyArray<Job>) =>
          Effect.match(journalService.write(jobs), { onFailure: Option.some, onSuccess: () => Option.none<StoreUnavailable>() })
        if (carried === undefined) return written([entry.job])
        return Effect.flatMap(written([carried.job, entry.job]), (unrecorded) =>
          Effect.zipLeft(
            Option.isNone(unrecorded)
              ? Effect.succeed(unrecorded)
              : // Written together they failed together: each on its own, so that one record's fault is not the other's.
                Effect.zipRight(journalWrite([carried.job]), written([entry.job])),
            carried.settle,
          ),
        )
      }),
    )

  return { ended, endedNow, flushCarry, recordRunning }
}

export type LaneCarry = ReturnType<typeof makeLaneCarry>
