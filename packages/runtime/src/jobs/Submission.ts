import { Effect, Option } from "effect"
import {
  describeJsonValueProblem,
  type JobRefused,
  jsonValueProblem,
  newPendingJob,
  priorityProblem,
  type JobId,
  type SequenceId,
} from "@plinth/domain"
import { newJobId } from "./JobIds.js"
import { makeJobRequestChecks, timeoutMillisOf } from "./JobRequestChecks.js"
import type { SubmitJob } from "./JobQueue.js"
import { refuse, type QueueState } from "./QueueState.js"
import type { PendingOrder } from "./PendingOrder.js"

/* Submission: a job's checks (priority, timeout, instance and action, JSON input), its pending record, idempotency keys. */
export const makeSubmission = (q: QueueState, order: PendingOrder) => {
  const { manager, journal, keys, keyLock, heard, publish, common } = q

  const { enqueue } = order

  const { instanceProblem } = makeJobRequestChecks(manager)

  /** Checks, journals (pending) and queues a job; the id once its pending record is written. */
  const submitChecked = (request: SubmitJob, sequence?: { readonly id: SequenceId; readonly index: number }): Effect.Effect<JobId, JobRefused> =>
    // Steps, not a generator: a busy host submits thousands of jobs a second.
    Effect.suspend(() => {
      if (q.closing) return Effect.fail(refuse("the queue is shutting down"))
      const priority = request.priority ?? 0
      const badPriority = priorityProblem(priority)
      if (badPriority !== undefined) return Effect.fail(refuse(badPriority))
      const timeoutMillis = timeoutMillisOf(request.timeout)
      if (typeof timeoutMillis === "object") return Effect.fail(refuse(timeoutMillis.problem))
      return Effect.flatMap(instanceProblem(request.instance, request.action), (checked) => {
        if ("problem" in checked) return Effect.fail(refuse(checked.problem))
        // The input is journaled and sent to a worker as JSON: what JSON cannot carry is refused now, not lost later.
        const badInput = jsonValueProblem(request.input)
        if (badInput !== undefined) return Effect.fail(refuse(`the input is not a JSON value: ${describeJsonValueProblem(badInput)}`))
        const now = Date.now()
        const job = newPendingJob(request.id ?? newJobId(now), sequence === undefined ? request : { ...request, sequence }, priority, timeoutMillis, now)
        const accept = () => {
          enqueue(job, checked.plugin)
          if (heard()) publish({ _tag: "submitted", ...common(job), instance: job.instance, action: job.action, priority })
          return job.id
        }
        if (Option.isNone(journal)) return Effect.succeed(accept())
        // Durable before it is accepted: a job the journal could not hold is refused, never queued on a promise the disk did not keep.
        return Effect.map(
          Effect.mapError(journal.value.write([job]), (error) => refuse(`the job journal could not be written, so nothing was queued: ${error.message}`)),
          accept,
        )
      })
    })

  const knownKey = (key: string): Effect.Effect<JobId | undefined> =>
    Effect.gen(function* () {
      const known = keys.get(key)
      if (known !== undefined) return known
      if (Option.isNone(journal)) return undefined
      const found = yield* Effect.orElseSucceed(journal.value.findByKey(key), () => undefined)
      return found?.id
    })

  const submit = (request: SubmitJob): Effect.Effect<JobId, JobRefused> =>
    // A job given with the id of one this queue holds is that job, delivered again: not a second entry.
    request.id !== undefined && q.live.has(request.id)
      ? Effect.succeed(request.id)
      : submitUnseen(request)

  const submitUnseen = (request: SubmitJob): Effect.Effect<JobId, JobRefused> =>
    // A job that comes with its id was accepted, and its key deduplicated, by the queue that gave it the id.
    request.idempotencyKey === undefined || request.id !== undefined
      ? submitChecked(request)
      : keyLock.withPermits(1)(
          Effect.flatMap(knownKey(request.idempotencyKey), (known) => (known !== undefined ? Effect.succeed(known) : submitChecked(request))),
        )

  return { instanceProblem, submitChecked, submit }
}

export type Submission = ReturnType<typeof makeSubmission>
