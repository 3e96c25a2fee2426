import { Effect, Option } from "effect"
import { isTerminal, JobNotFound, type Job, type JobId, type JobLogLine } from "@plinth/domain"
import { makeOneShot } from "../effects/OneShot.js"
import type { QueueState } from "./QueueState.js"

/* Reading the queue: a job (live, archived or journaled), waiting for one, its logs, the running jobs, the counts. */
export const makeReading = (q: QueueState) => {
  const { journal, live, archive, pending, held, counts, throughput, history, maxHistory } = q

  const findJob = (id: JobId): Effect.Effect<Option.Option<Job>> =>
    Effect.suspend(() => {
      const entry = live.get(id)
      if (entry !== undefined) return Effect.succeed(Option.some(entry.job))
      const archived = archive.get(id)
      if (archived !== undefined) return Effect.succeed(Option.some(archived.job))
      if (Option.isNone(journal)) return Effect.succeed(Option.none())
      return Effect.map(Effect.orElseSucceed(journal.value.find(id), () => undefined), Option.fromNullable)
    })

  const wait = (id: JobId): Effect.Effect<Job, JobNotFound> =>
    Effect.suspend(() => {
      const entry = live.get(id)
      if (entry !== undefined) {
        // A job that has just finished (its end being journaled) is archived only after: its waiter is told by finish.
        entry.done ??= makeOneShot<Job>()
        return entry.done.await
      }
      return Effect.flatMap(findJob(id), (found) =>
        Option.isSome(found) && isTerminal(found.value.status) ? Effect.succeed(found.value) : Effect.fail(new JobNotFound({ job: id })),
      )
    })

  const running = Effect.sync(() => [...live.values()].filter((e) => e.job.status === "running").map((e) => e.job))

  const stats = Effect.sync(() => {
    let runningCount = 0
    for (const entry of live.values()) if (entry.job.status === "running") runningCount++
    let heldCount = 0
    for (const list of held.values()) heldCount += list.length
    return { pending: pending.length + heldCount, running: runningCount, ...counts, throughput: throughput.rate(Date.now()) }
  })

  const logs = (id: JobId) =>
    Effect.suspend(() => {
      const entry = live.get(id)
      if (entry !== undefined) return Effect.succeed([...(entry.logs ?? [])])
      const archived = archive.get(id)
      if (archived !== undefined) return Effect.succeed([...archived.logs])
      return Effect.flatMap(findJob(id), (found) => (Option.isSome(found) ? Effect.succeed([] as Array<JobLogLine>) : Effect.fail(new JobNotFound({ job: id }))))
    })

  const recentHistory = (limit: number | undefined) =>
    Effect.sync(() => {
      const n = Math.max(0, Math.min(limit ?? maxHistory, maxHistory, history.length))
      return n === 0 ? [] : history.slice(history.length - n).reverse()
    })

  return { findJob, wait, running, stats, logs, recentHistory }
}

export type Reading = ReturnType<typeof makeReading>
