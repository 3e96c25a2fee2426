import { Effect } from "effect"
import { compareRunOrder, insertionIndexBy, priorityProblem, type Job, type JobId } from "@plinth/domain"
import { runKey, type Entry, type QueueState } from "./QueueState.js"

/*
 * The pending order: pending jobs in run order (domain Ordering.ts), the held
 * jobs whose instance is not loaded, and reordering.
 */
export const makePendingOrder = (q: QueueState) => {
  const { live, keys, pending, held, tokens, setJob, setBlockReason, heard, publish, common, journalWrite } = q

  /** Makes a pending entry of an already-checked job and lets a lane see it. */
  const enqueue = (job: Job, plugin: string): Entry => {
    const entry: Entry = {
      job,
      seq: q.submissions++,
      plugin,
      done: undefined,
      logs: undefined,
      fiber: undefined,
      canceller: undefined,
      cancelling: false,
      cancelStarted: false,
      cancelSettled: undefined,
      callStarted: false,
      finished: false,
    }
    live.set(job.id, entry)
    if (job.idempotencyKey !== undefined) keys.set(job.idempotencyKey, job.id)
    insertPending(entry)
    return entry
  }

  const insertPending = (entry: Entry) => {
    const last = pending[pending.length - 1]
    // Most jobs go last (no higher priority than the last pending one, submitted after it): appended, no search.
    if (last === undefined || compareRunOrder(runKey(last), runKey(entry)) < 0) pending.push(entry)
    else pending.splice(insertionIndexBy(pending, runKey(entry), runKey), 0, entry)
    tokens.unsafeOffer(undefined)
  }

  /** Takes a pending job out of the run order (or out of the held ones); false when it was in neither. */
  const removePending = (entry: Entry): boolean => {
    const index = pending.indexOf(entry)
    if (index >= 0) {
      pending.splice(index, 1)
      return true
    }
    const list = held.get(entry.job.instance)
    const at = list?.indexOf(entry) ?? -1
    if (at < 0) return false
    list!.splice(at, 1)
    if (list!.length === 0) held.delete(entry.job.instance)
    return true
  }

  const hold = (entry: Entry) => {
    const list = held.get(entry.job.instance) ?? []
    list.push(entry)
    held.set(entry.job.instance, list)
    setBlockReason(entry, `instance '${entry.job.instance}' is not loaded; the job waits until it is`)
  }

  /** The instance was loaded: its held jobs take their places in the run order again. */
  const release = (instance: string) => {
    const list = held.get(instance)
    if (list === undefined) return
    held.delete(instance)
    for (const entry of list) {
      setBlockReason(entry, undefined)
      insertPending(entry)
    }
  }

  const pendingInOrder = (): Array<Entry> => {
    if (held.size === 0) return [...pending]
    return [...pending, ...[...held.values()].flat()].sort((a, b) => compareRunOrder(runKey(a), runKey(b)))
  }

  const reorder = (id: JobId, priority: number) =>
    Effect.suspend(() => {
      const entry = live.get(id)
      if (entry === undefined || entry.job.status !== "pending" || entry.cancelling || priorityProblem(priority) !== undefined) return Effect.succeed(false)
      const wasHeld = pending.indexOf(entry) < 0
      if (!removePending(entry)) return Effect.succeed(false)
      const from = entry.job.priority
      setJob(entry, { ...entry.job, priority })
      if (wasHeld) {
        const list = held.get(entry.job.instance) ?? []
        list.push(entry)
        held.set(entry.job.instance, list)
      } else pending.splice(insertionIndexBy(pending, runKey(entry), runKey), 0, entry)
      if (heard()) publish({ _tag: "priorityChanged", ...common(entry.job), from, to: priority })
      return Effect.as(journalWrite([entry.job]), true)
    })

  return { enqueue, insertPending, removePending, hold, release, pendingInOrder, reorder }
}

export type PendingOrder = ReturnType<typeof makePendingOrder>
