import { Effect, Option, Queue, Scope } from "effect"
import type { JobLogLine } from "@plinth/domain"
import type { Entry, QueueState } from "./QueueState.js"

/*
 * Watching running jobs: their progress, their worker's lines (the job's
 * log) and their worker's resource samples.
 */
export const makeWatching = (q: QueueState) => {
  const { live, observation, maxLogLines, queueScope, setJob, heard, publish, common } = q

  const progressed = (entry: Entry, fraction: number, message: string | undefined) => {
    if (entry.finished || entry.cancelling) return
    if (entry.job.progress === fraction && entry.job.statusMessage === message) return
    const { statusMessage: _m, ...rest } = entry.job
    setJob(entry, { ...rest, progress: fraction, ...(message !== undefined ? { statusMessage: message } : {}) })
    if (heard()) publish({ _tag: "progressChanged", ...common(entry.job), progress: fraction, ...(message !== undefined ? { message } : {}) })
  }

  /**
   * While a job runs, its worker's lines go to its log, bounded (the oldest
   * dropped), and its worker is sampled every `snapshotInterval`
   * (JobObservation). Both are shared, not per job: one reader of lines per
   * instance, taken in the queue's scope the first time a job runs on it,
   * hands each line to the jobs running there (a line older than a job's
   * start is not its); one sampler samples each busy instance once a tick.
   * A job then costs a set insertion, not a subscription and two fibers.
   */
  const watchers = new Map<string, Set<Entry>>()

  const appendLines = (entry: Entry, taken: Iterable<JobLogLine>) => {
    const startedAt = entry.job.startedAt ?? 0
    for (const line of taken) {
      if (line.at < startedAt) continue
      const logs = (entry.logs ??= [])
      logs.push(line)
      if (logs.length > maxLogLines) logs.splice(0, logs.length - maxLogLines)
    }
  }

  /** Adds the job to its instance's line reader, starting the reader (subscribed before the job's call starts) if there is none. */
  const watch = (entry: Entry): Effect.Effect<void> => {
    const instance = entry.job.instance
    const existing = watchers.get(instance)
    if (existing !== undefined) {
      existing.add(entry)
      return Effect.void
    }
    const watching = new Set<Entry>([entry])
    watchers.set(instance, watching)
    return Effect.flatMap(Scope.extend(observation.lines(instance), queueScope), (queue) =>
      Effect.asVoid(
        Effect.forkIn(
          Effect.forever(
            Effect.flatMap(Queue.takeBetween(queue, 1, 1000), (taken) =>
              Effect.sync(() => {
                for (const job of watching) appendLines(job, taken)
              }),
            ),
          ).pipe(
            // Its source ended (say the instance was unloaded): the next job on the instance starts a new reader.
            Effect.ensuring(Effect.sync(() => watchers.get(instance) === watching && watchers.delete(instance))),
          ),
          queueScope,
        ),
      ),
    )
  }

  const unwatch = (entry: Entry) => void watchers.get(entry.job.instance)?.delete(entry)

  const sampleBusyInstances = Effect.suspend(() => {
    const busy = new Map<string, Array<Entry>>()
    for (const entry of live.values()) {
      if (entry.job.status !== "running" || entry.finished) continue
      const list = busy.get(entry.job.instance)
      if (list === undefined) busy.set(entry.job.instance, [entry])
      else list.push(entry)
    }
    return Effect.forEach(
      busy,
      ([instance, entries]) =>
        Effect.map(observation.sample(instance), (taken) => {
          if (Option.isNone(taken)) return
          const now = taken.value
          for (const entry of entries) {
            if (entry.finished) continue
            const previous = entry.job.lastSnapshot
            const cpuPercent =
              previous !== undefined && previous.pid === now.pid && now.at > previous.at
                ? Math.max(0, ((now.cpuMillis - previous.cpuMillis) / (now.at - previous.at)) * 100)
                : undefined
            const snapshot = { at: now.at, pid: now.pid, rssBytes: now.rssBytes, cpuMillis: now.cpuMillis, ...(cpuPercent !== undefined ? { cpuPercent } : {}) }
            setJob(entry, { ...entry.job, lastSnapshot: snapshot })
            if (heard()) publish({ _tag: "resourceSnapshot", ...common(entry.job), snapshot })
          }
        }),
      { discard: true },
    )
  })

  return { progressed, watch, unwatch, sampleBusyInstances }
}

export type Watching = ReturnType<typeof makeWatching>
