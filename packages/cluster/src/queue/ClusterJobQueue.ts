import { Duration, Effect, Option, Stream } from "effect"
import {
  describeJsonValueProblem,
  isTerminal,
  JobNotFound,
  JobRefused,
  jsonValueProblem,
  newPendingJob,
  newSequence,
  priorityProblem,
  sequenceCancelled,
  type Job,
  type JobSequence,
  type SequenceId,
  type SequenceStep,
  type JobEvent,
  type JobId,
} from "@plinth/domain"
import {
  JobQueue,
  jobEventsUntilEnd,
  makeEventHub,
  makeJobRequestChecks,
  newJobId,
  newSequenceId,
  stepsProblem,
  PluginManager,
  timeoutMillisOf,
  type EventFilter,
  type SubmitJob,
  type SubmitSequenceOptions,
} from "@plinth/runtime"
import { ClusterEvents, relayInto } from "../events/EventRelay.js"
import { JobEntity, SequenceEntity } from "../protocol/JobEntity.js"
import { stepJobId } from "../protocol/StepIds.js"
import { JobRows } from "../storage/JobRows.js"

/*
 * The JobQueue over the cluster, for callers the same service as on one host
 * (ADR 0033): `submit` records the job pending in Postgres and stores its
 * `Run` message, both before it returns; the runner that owns the shard of
 * the job's instance runs it on its own queue. Reads come from the shared job rows, events
 * from every runner through the relay, and cancel, reorder and logs go to the
 * runner where the job is.
 *
 * Where one host's queue and this one differ (README, "Scaling out"):
 * one instance's jobs all run on one runner (its order, priorities and
 * concurrency cap hold as on one host; spreading a plugin's work means
 * giving it several instances); a sequence is carried on by the runner owning its shard, its steps run
 * wherever theirs are; a running job's progress is in its events, not in
 * `get` until it ends.
 */

export interface ClusterJobQueueOptions {
  readonly database: string
  readonly maxHistory?: number
  readonly subscriberBuffer?: number
  /** How often `wait` reads a job's row when it has heard nothing (events are not durable); default 1 s. */
  readonly waitPoll?: Duration.DurationInput
}

/** Jobs listed by `pending` and `running` at most: the API and the dashboard show the first ones. */
const LIST_LIMIT = 10_000

export const makeClusterJobQueue = (options: ClusterJobQueueOptions) =>
  Effect.gen(function* () {
    const rows = yield* JobRows
    const sender = yield* ClusterEvents
    const entity = yield* JobEntity.client
    const sequenceEntity = yield* SequenceEntity.client
    const manager = yield* Effect.serviceOption(PluginManager)
    const checks = Option.map(manager, makeJobRequestChecks)
    const maxHistory = options.maxHistory ?? 100
    const subscriberBuffer = options.subscriberBuffer ?? 100
    const waitPoll = Duration.decode(options.waitPoll ?? "1 second")

    const hub = makeEventHub()
    yield* Effect.addFinalizer(() => hub.shutdown)
    yield* relayInto(options.database, hub)

    const refuse = (reason: string) => Effect.fail(new JobRefused({ reason }))
    const databaseDown = (error: { readonly message: string }) =>
      new JobRefused({ reason: `the cluster database could not record it, so nothing was queued: ${error.message}` })

    const submit = (request: SubmitJob): Effect.Effect<JobId, JobRefused> =>
      Effect.gen(function* () {
        const priority = request.priority ?? 0
        const badPriority = priorityProblem(priority)
        if (badPriority !== undefined) return yield* refuse(badPriority)
        const timeoutMillis = timeoutMillisOf(request.timeout)
        if (typeof timeoutMillis === "object") return yield* refuse(timeoutMillis.problem)
        // A host that runs the instance checks it here; a client alone leaves it to the runner, which fails the job if it must.
        if (Option.isSome(checks)) {
          const checked = yield* checks.value.instanceProblem(request.instance, request.action)
          if ("problem" in checked) return yield* refuse(checked.problem)
        }
        const badInput = jsonValueProblem(request.input)
        if (badInput !== undefined) return yield* refuse(`the input is not a JSON value: ${describeJsonValueProblem(badInput)}`)
        const now = Date.now()
        const job = newPendingJob(request.id ?? newJobId(now), request, priority, timeoutMillis, now)
        const { inserted, id } = yield* Effect.mapError(rows.insertPending(job), databaseDown)
        // A job that came with its id (a sequence's step, submitted again by a sequence carried on elsewhere) is sent again
        // unless it has ended: its Run is the same stored message, so a second send is harmless and a lost one is made good.
        if (!inserted && request.id === undefined) return id
        if (!inserted) {
          const held = yield* Effect.mapError(rows.get(id), databaseDown)
          if (held === undefined || isTerminal(held.status)) return id
        }
        // Stored before this returns: from here the cluster delivers it until a runner has answered.
        yield* Effect.mapError(entity(job.instance).Run({ job }, { discard: true }), (error) =>
          new JobRefused({ reason: `the cluster could not take it (${error._tag}): retry the submission` }),
        )
        if (inserted) sender.send({ _tag: "submitted", job: job.id, at: now, instance: job.instance, action: job.action, priority, ...(job.sequence !== undefined ? { sequence: job.sequence.id } : {}) })
        return job.id
      })

    const get = (id: JobId) => Effect.map(Effect.orDie(rows.get(id)), Option.fromNullable)

    const wait = (id: JobId): Effect.Effect<Job, JobNotFound> =>
      Effect.scoped(
        Effect.gen(function* () {
          const subscription = yield* hub.subscribe({ _tag: "job", job: id }, 16)
          const ended = subscription.events.pipe(
            Stream.filter((event) => event._tag === "stateChanged" && isTerminal(event.to)),
            Stream.runHead,
          )
          while (true) {
            const row = yield* Effect.orDie(rows.get(id))
            if (row === undefined) return yield* new JobNotFound({ job: id })
            if (isTerminal(row.status)) return row
            // The event says when to look again; the poll covers events lost while the database restarted.
            yield* Effect.timeoutOption(ended, waitPoll)
          }
        }),
      )

    const cancel = (id: JobId) =>
      Effect.gen(function* () {
        const row = yield* Effect.orDie(rows.get(id))
        if (row === undefined || isTerminal(row.status)) return false
        return yield* entity(row.instance).Cancel({ job: id })
      }).pipe(Effect.orElseSucceed(() => false))

    const reorder = (id: JobId, priority: number) =>
      priorityProblem(priority) !== undefined
        ? Effect.succeed(false)
        : Effect.gen(function* () {
            const row = yield* Effect.orDie(rows.get(id))
            if (row === undefined || row.status !== "pending") return false
            return yield* entity(row.instance).Reorder({ job: id, priority })
          }).pipe(Effect.orElseSucceed(() => false))

    const logs = (id: JobId) =>
      Effect.gen(function* () {
        const row = yield* Effect.orDie(rows.get(id))
        if (row === undefined) return yield* new JobNotFound({ job: id })
        if (isTerminal(row.status)) return (yield* Effect.orDie(rows.logs(id))) ?? []
        return yield* Effect.orElseSucceed(entity(row.instance).Logs({ job: id }), () => [])
      })

    const subscribe = (filter: EventFilter, subscribeOptions?: { readonly buffer?: number }) =>
      hub.subscribe(filter, subscribeOptions?.buffer ?? subscriberBuffer)

    const events = (id: JobId): Stream.Stream<JobEvent> => jobEventsUntilEnd(subscribe, get, id)

    const submitSequence = (steps: ReadonlyArray<SequenceStep>, sequenceOptions: SubmitSequenceOptions = {}): Effect.Effect<SequenceId, JobRefused> =>
      Effect.gen(function* () {
        const priority = sequenceOptions.priority ?? 0
        const badPriority = priorityProblem(priority)
        if (badPriority !== undefined) return yield* refuse(badPriority)
        const badStep = yield* stepsProblem(steps, Option.isSome(checks) ? checks.value.instanceProblem : undefined)
        if (badStep !== undefined) return yield* refuse(badStep)
        const now = Date.now()
        const sequence = newSequence(newSequenceId(now), steps, sequenceOptions.mode ?? "failFast", priority, now)
        yield* Effect.mapError(rows.insertSequence(sequence), databaseDown)
        // An empty sequence is complete as it is recorded; any other is carried on by the runner that owns its shard.
        if (steps.length > 0) {
          yield* Effect.mapError(sequenceEntity(sequence.id).Run({ sequence }, { discard: true }), (error) =>
            new JobRefused({ reason: `the cluster could not take it (${error._tag}): retry the submission` }),
          )
        }
        return sequence.id
      })

    const getSequence = (id: SequenceId) => Effect.map(Effect.orDie(rows.getSequence(id)), Option.fromNullable)

    const cancelSequence = (id: SequenceId): Effect.Effect<boolean> =>
      Effect.gen(function* () {
        for (;;) {
          const sequence = yield* Effect.orDie(rows.getSequence(id))
          if (sequence === undefined || isTerminal(sequence.status)) return false
          const cancelled = sequenceCancelled(sequence, Date.now())
          if (!(yield* Effect.orDie(rows.replaceSequence(sequence, cancelled)))) continue
          // The step that runs ends cancelled (its result recorded); no later step starts.
          yield* cancel(stepJobId(id, sequence.current))
          return true
        }
      })

    const waitSequence = (id: SequenceId): Effect.Effect<JobSequence, JobNotFound> =>
      Effect.scoped(
        Effect.gen(function* () {
          const subscription = yield* hub.subscribe({ _tag: "sequence", sequence: id }, 16)
          const advanced = subscription.events.pipe(
            Stream.filter((event) => event._tag === "sequenceAdvanced" || (event._tag === "stateChanged" && isTerminal(event.to))),
            Stream.runHead,
          )
          while (true) {
            const sequence = yield* Effect.orDie(rows.getSequence(id))
            if (sequence === undefined) return yield* new JobNotFound({ job: id })
            if (isTerminal(sequence.status)) {
              // A cancelled sequence is waited for until the result of the step it had started is in, as on one host: the
              // runner carrying it records that result (SequenceRunner) and says so with a sequenceAdvanced event.
              const owed = sequence.status === "cancelled" && sequence.results.length <= sequence.current
              if (!owed || Option.isNone(yield* get(stepJobId(id, sequence.current)))) return sequence
            }
            yield* Effect.timeoutOption(advanced, waitPoll)
          }
        }),
      )

    return JobQueue.of({
      submit,
      reorder,
      cancel,
      get,
      wait,
      pending: Effect.orDie(rows.pending(LIST_LIMIT)),
      running: Effect.orDie(rows.running(LIST_LIMIT)),
      history: (limit) => Effect.orDie(rows.history(Math.max(0, Math.min(limit ?? maxHistory, maxHistory)))),
      stats: Effect.suspend(() => Effect.orDie(rows.stats(Date.now()))),
      logs,
      submitSequence,
      cancelSequence,
      getSequence,
      waitSequence,
      subscribe,
      events,
      sequenceEvents: (sequence) => hub.events({ _tag: "sequence", sequence }, subscriberBuffer),
      allEvents: hub.events({ _tag: "all" }, subscriberBuffer),
    })
  })
