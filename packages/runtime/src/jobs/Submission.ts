import { Duration, Effect, Option } from "effect"
import {
  describeJsonValueProblem,
  JobRefused,
  jsonValueProblem,
  priorityProblem,
  timeoutProblem,
  type Job,
  type JobId,
  type SequenceId,
} from "@plinth/domain"
import { newJobId } from "./JobIds.js"
import type { SubmitJob } from "./JobQueue.js"
import { refuse, type QueueState } from "./QueueState.js"
import type { PendingOrder } from "./PendingOrder.js"

/* Submission: a job's checks (priority, timeout, instance and action, JSON input), its pending record, idempotency keys. */
export const makeSubmission = (q: QueueState, order: PendingOrder) => {
  const { manager, journal, keys, keyLock, heard, publish, common } = q

  const { enqueue } = order

  /** Each plugin's declared actions: its manifest was verified when the manager started and does not change. */
  const declared = new Map<string, ReadonlySet<string>>()

  const instanceProblem = (instance: string, action: string): Effect.Effect<{ plugin: string } | { problem: string }> =>
    Effect.gen(function* () {
      const found = yield* Effect.either(manager.get(instance))
      if (found._tag === "Left") {
        const loaded = found.left.loaded
        return { problem: `instance '${instance}' is not loaded; load it first${loaded.length > 0 ? ` (loaded: ${loaded.join(", ")})` : ""}` }
      }
      const managed = found.right
      if (!managed.enabled) {
        return { problem: `instance '${instance}' is disabled${managed.disabledReason !== undefined ? ` (${managed.disabledReason})` : ""}; enable it first` }
      }
      let actions = declared.get(managed.plugin)
      if (actions === undefined) {
        actions = new Set(yield* Effect.orElseSucceed(manager.actions(instance), () => [] as ReadonlyArray<string>))
        declared.set(managed.plugin, actions)
      }
      if (!actions.has(action)) {
        return { problem: `instance '${instance}' (plugin ${managed.plugin}) declares no action '${action}'; it declares: ${[...actions].join(", ") || "none"}` }
      }
      return { plugin: managed.plugin }
    })

  const timeoutMillisOf = (timeout: Duration.DurationInput | undefined): number | undefined | { problem: string } => {
    if (timeout === undefined) return undefined
    const decoded = Duration.decodeUnknown(timeout)
    if (Option.isNone(decoded)) return { problem: `timeout must be a duration, got ${typeof timeout === "string" ? JSON.stringify(timeout) : typeof timeout}` }
    const millis = Duration.toMillis(decoded.value)
    const problem = timeoutProblem(millis)
    return problem === undefined ? millis : { problem }
  }

  /** Checks, journals (pending) and queues a job; the id once its pending record is written. */
  const submitChecked = (request: SubmitJob, sequence?: { readonly id: SequenceId; readonly index: number }): Effect.Effect<JobId, JobRefused> =>
    Effect.gen(function* () {
      if (q.closing) return yield* refuse("the queue is shutting down")
      const priority = request.priority ?? 0
      const badPriority = priorityProblem(priority)
      if (badPriority !== undefined) return yield* refuse(badPriority)
      const timeoutMillis = timeoutMillisOf(request.timeout)
      if (typeof timeoutMillis === "object") return yield* refuse(timeoutMillis.problem)
      const checked = yield* instanceProblem(request.instance, request.action)
      if ("problem" in checked) return yield* refuse(checked.problem)
      // The input is journaled and sent to a worker as JSON: what JSON cannot carry is refused now, not lost later.
      const badInput = jsonValueProblem(request.input)
      if (badInput !== undefined) return yield* refuse(`the input is not a JSON value: ${describeJsonValueProblem(badInput)}`)
      const now = Date.now()
      const job: Job = {
        id: newJobId(now),
        instance: request.instance,
        action: request.action,
        input: request.input,
        priority,
        status: "pending",
        submittedAt: now,
        progress: -1,
        retryCount: 0,
        ...(request.idempotencyKey !== undefined ? { idempotencyKey: request.idempotencyKey } : {}),
        ...(timeoutMillis !== undefined ? { timeoutMillis } : {}),
        ...(sequence !== undefined ? { sequence } : {}),
      }
      // Durable before it is accepted: a job the journal could not hold is refused, never queued on a promise the disk did not keep.
      if (Option.isSome(journal)) {
        yield* Effect.mapError(journal.value.write([job]), (error) =>
          refuse(`the job journal could not be written, so nothing was queued: ${error.message}`),
        )
      }
      enqueue(job, checked.plugin)
      if (heard()) publish({ _tag: "submitted", ...common(job), instance: job.instance, action: job.action, priority })
      return job.id
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
    request.idempotencyKey === undefined
      ? submitChecked(request)
      : keyLock.withPermits(1)(
          Effect.flatMap(knownKey(request.idempotencyKey), (known) => (known !== undefined ? Effect.succeed(known) : submitChecked(request))),
        )

  return { instanceProblem, timeoutMillisOf, submitChecked, submit }
}

export type Submission = ReturnType<typeof makeSubmission>
