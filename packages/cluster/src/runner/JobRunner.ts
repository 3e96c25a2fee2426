import { Duration, Effect, Layer, Option, Schedule, Stream } from "effect"
import { afterInterruption, isTerminal, JobError, type Job, type JobId } from "@plinth/domain"
import { PluginManager } from "@plinth/runtime"
import { JobEntity } from "../protocol/JobEntity.js"
import { JobRows } from "../storage/JobRows.js"
import { RunnerQueue } from "./RunnerQueue.js"
import type { EventSender } from "../events/EventRelay.js"

/*
 * What a runner does with the jobs the cluster delivers to it. A job whose
 * row already holds its end is answered from that row and not run again: the
 * result is recorded once however often the job is delivered. A job whose
 * row says it was running is one whose runner died: it runs again only when
 * its idempotency key says that is safe, and ends failed with JobInterrupted
 * otherwise, as on a single host. Anything else is submitted to this
 * runner's own queue under its cluster id, and its end (written to the row
 * by that queue's journal before anyone is told) is the reply.
 */

/** SQL errors outlast the rows' own retries only while the database is away: keep trying (never giving up, so orDie never dies), the message stays unanswered meanwhile. */
const untilDatabaseIsBack = Schedule.spaced("1 second")

export const JobRunnerLive = (options: { readonly runner: string; readonly sender: EventSender }) => {
  // The runner's, not one entity's: the build below runs again for each entity, and again when
  // one restarts after a defect (a reply the database could not store), with its messages
  // delivered again to the new one.
  /** Cancellations asked for before the job reached this runner's queue. */
  const cancelRequested = new Set<string>()
  /** Priorities set before the job reached this runner's queue. */
  const priorityRequested = new Map<string, number>()
  /** Jobs on this runner's queue now (its `get` also reads the shared rows, so it cannot tell). */
  const here = new Set<string>()
  return JobEntity.toLayer(
    Effect.gen(function* () {
      const rows = yield* JobRows
      const local = yield* RunnerQueue
      const manager = yield* PluginManager
      const { sender } = options

      const pluginOf = (instance: string) =>
        Effect.map(Effect.option(manager.get(instance)), (found) => (Option.isSome(found) ? found.value.plugin : instance))

      const recorded = (id: JobId, fallback: Job) => Effect.map(rows.get(id), (job) => job ?? fallback)

      /** Ends a job that never reaches the queue (refused here, cancelled before it arrived, interrupted); the recorded end. */
      const endWithout = (job: Job, end: Job) =>
        Effect.gen(function* () {
          yield* rows.write([end], options.runner)
          const now = yield* recorded(job.id, end)
          if (now.status === end.status && now.finishedAt === end.finishedAt) {
            sender.send({ _tag: "stateChanged", job: job.id, at: end.finishedAt ?? Date.now(), from: job.status, to: end.status })
          }
          return now
        })

      const finish = (id: JobId, fallback: Job) =>
        Effect.gen(function* () {
          const done = yield* Effect.either(local.wait(id))
          const lines = yield* Effect.orElseSucceed(local.logs(id), () => [])
          if (lines.length > 0) yield* rows.setLogs(id, lines)
          cancelRequested.delete(id)
          here.delete(id)
          const row = yield* recorded(id, done._tag === "Right" ? done.right : fallback)
          if (isTerminal(row.status) || done._tag === "Left" || !isTerminal(done.right.status)) return row
          // The queue's own write of the end did not take (the database was away longer than it retries): the reply is never an unfinished job.
          yield* rows.write([done.right], options.runner)
          return yield* recorded(id, done.right)
        })

      const run = (job: Job) =>
        Effect.gen(function* () {
          const row = (yield* rows.get(job.id)) ?? job
          if (isTerminal(row.status)) {
            cancelRequested.delete(job.id)
            priorityRequested.delete(job.id)
            return row
          }
          if (here.has(job.id)) return yield* finish(job.id, row)
          const now = Date.now()
          if (cancelRequested.has(job.id)) {
            cancelRequested.delete(job.id)
            const { blockReason: _b, ...rest } = row
            return yield* endWithout(row, { ...rest, status: "cancelled", finishedAt: now })
          }
          let next = row
          if (row.status === "running") {
            const outcome = afterInterruption(row, yield* pluginOf(row.instance), now)
            if (outcome._tag === "failed") return yield* endWithout(row, outcome.job)
            next = outcome.job
          }
          const submitted = yield* Effect.either(
            local.submit({
              id: job.id,
              instance: next.instance,
              action: next.action,
              input: next.input,
              priority: next.priority,
              ...(next.timeoutMillis !== undefined ? { timeout: Duration.millis(next.timeoutMillis) } : {}),
              ...(next.idempotencyKey !== undefined ? { idempotencyKey: next.idempotencyKey } : {}),
              ...(next.sequence !== undefined ? { sequence: next.sequence } : {}),
            }),
          )
          if (submitted._tag === "Left") {
            const error = new JobError({
              category: "input",
              tag: "JobRefused",
              message: `${submitted.left.message} (on runner ${options.runner})`,
              retriable: false,
              plugin: yield* pluginOf(next.instance),
              instance: next.instance,
              time: new Date(now),
            })
            return yield* endWithout(next, { ...next, status: "failed", finishedAt: now, error })
          }
          here.add(job.id)
          const priority = priorityRequested.get(job.id)
          priorityRequested.delete(job.id)
          if (priority !== undefined && priority !== next.priority) yield* local.reorder(job.id, priority)
          if (cancelRequested.has(job.id)) yield* local.cancel(job.id)
          return yield* finish(job.id, next)
        }).pipe(Effect.retry(untilDatabaseIsBack), Effect.orDie)

      const cancel = (id: JobId) =>
        Effect.gen(function* () {
          // Noted first: a Run between reading its row and reaching the queue cancels its job once there.
          cancelRequested.add(id)
          if (yield* local.cancel(id)) return true
          const cancelled = yield* rows.cancelPending(id, Date.now())
          if (cancelled !== undefined) {
            sender.send({ _tag: "stateChanged", job: id, at: cancelled.finishedAt ?? Date.now(), from: "pending", to: "cancelled" })
            return true
          }
          const row = yield* rows.get(id)
          if (row === undefined || isTerminal(row.status)) {
            cancelRequested.delete(id)
            return false
          }
          // Running on a runner that died, about to be delivered here: it is cancelled when it arrives.
          return true
        }).pipe(Effect.retry(untilDatabaseIsBack), Effect.orDie)

      const reorder = (id: JobId, priority: number) =>
        Effect.gen(function* () {
          if (yield* local.reorder(id, priority)) return true
          // Noted first, as for cancel: a Run on its way here with the old priority takes this one.
          priorityRequested.set(id, priority)
          const before = yield* rows.get(id)
          const moved = yield* rows.setPriority(id, priority)
          if (!moved) {
            priorityRequested.delete(id)
            // It reached this runner's queue meanwhile.
            return yield* local.reorder(id, priority)
          }
          if (before !== undefined) sender.send({ _tag: "priorityChanged", job: id, at: Date.now(), from: before.priority, to: priority })
          return true
        }).pipe(Effect.retry(untilDatabaseIsBack), Effect.orDie)

      const logs = (id: JobId) =>
        Effect.gen(function* () {
          const onThisRunner = yield* Effect.either(local.logs(id))
          if (onThisRunner._tag === "Right") return onThisRunner.right
          return (yield* rows.logs(id)) ?? []
        }).pipe(Effect.retry(untilDatabaseIsBack), Effect.orDie)

      return JobEntity.of({
        Run: (request) => run(request.payload.job),
        Cancel: (request) => cancel(request.payload.job),
        Reorder: (request) => reorder(request.payload.job, request.payload.priority),
        Logs: (request) => logs(request.payload.job),
      })
    }),
    // All of an instance's jobs are messages to one entity: they run at once on this runner's queue (which orders and
    // bounds them), Cancel must reach a job while its Run waits, and no count of pending jobs may overflow a mailbox.
    { concurrency: "unbounded", mailboxCapacity: "unbounded", maxIdleTime: "30 seconds" },
  )
}

/** Sends what this runner's queue says to the whole cluster (but its submissions: the cluster's queue announced those). */
export const relayRunnerEvents = (sender: EventSender) =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      const local = yield* RunnerQueue
      const subscription = yield* local.subscribe({ _tag: "all" }, { buffer: 50_000 })
      yield* Effect.forkScoped(
        Stream.runForEach(subscription.events, (event) => Effect.sync(() => (event._tag === "submitted" ? undefined : sender.send(event)))),
      )
    }),
  )
