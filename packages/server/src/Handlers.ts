import { HttpApiBuilder } from "@effect/platform"
import { Context, Duration, Effect, Layer, Option, Redacted, Schema } from "effect"
import { JobId, SequenceId, type JobNotFound } from "@plinth/domain"
import { JobQueue, PluginManager, type ManagedInstance, type SubmitJob } from "@plinth/runtime"
import { Authorization, BadRequest, NotFound, PlinthApi, Unauthorized, type InstanceView, type PluginView } from "./Api.js"
import { eventStreamResponse, SseConnections, type EventStreamOptions } from "./EventStream.js"
import { tokenMatches } from "./ServeFiles.js"

/*
 * The handlers of the API: thin translations between HTTP and the
 * PluginManager and the JobQueue. Ids that are not well-formed are unknown
 * ids (404), not bad requests: to the caller both are "no such job".
 */

/** What the server shows that neither service knows: the verified plugins with their versions and digests. */
export class ServedPlugins extends Context.Tag("@plinth/server/ServedPlugins")<ServedPlugins, ReadonlyArray<PluginView>>() {}

const isJobId = Schema.is(JobId)
const isSequenceId = Schema.is(SequenceId)

/** A managed instance as the API shows it, with its worker's resident memory (the runtime's /proc sample, read now). */
const instanceView = (instance: ManagedInstance, rssBytes: number | undefined): InstanceView => {
  return {
    id: instance.id,
    plugin: instance.plugin,
    enabled: instance.enabled,
    ...(instance.disabledReason !== undefined ? { disabledReason: instance.disabledReason } : {}),
    ...(instance.pid !== undefined ? { pid: instance.pid } : {}),
    consecutiveFailures: instance.consecutiveFailures,
    maxConcurrent: instance.maxConcurrent,
    running: instance.running,
    waiting: instance.waiting,
    ...(rssBytes !== undefined ? { rssBytes } : {}),
  }
}

const noJob = (id: string) => new NotFound({ error: `no job ${JSON.stringify(id)}: list the jobs with GET /api/jobs or 'plinth jobs list'` })
const noSequence = (id: string) => new NotFound({ error: `no sequence ${JSON.stringify(id)}` })
const notFound = (e: JobNotFound) => new NotFound({ error: e.message })

export const ServerGroupLive = (options: EventStreamOptions) =>
  HttpApiBuilder.group(PlinthApi, "server", (handlers) =>
    Effect.gen(function* () {
      const plugins = yield* ServedPlugins
      const manager = yield* PluginManager
      const queue = yield* JobQueue
      const connections = yield* SseConnections
      return handlers
        .handle("plugins", () => Effect.succeed({ plugins }))
        .handle("instances", () =>
          Effect.map(
            Effect.flatMap(manager.list, (instances) =>
              Effect.forEach(instances, (instance) =>
                Effect.map(manager.snapshot(instance.id), (sample) => instanceView(instance, Option.getOrUndefined(Option.map(sample, (s) => s.rssBytes)))),
              ),
            ),
            (instances) => ({ instances }),
          ),
        )
        .handle("events", () => Effect.succeed(eventStreamResponse(queue, manager, connections, options)))
    }),
  )

export const JobsGroupLive = HttpApiBuilder.group(PlinthApi, "jobs", (handlers) =>
  Effect.gen(function* () {
    const queue = yield* JobQueue
    return handlers
      .handle("list", () =>
        Effect.all({ pending: queue.pending, running: queue.running, history: queue.history(), stats: queue.stats }, { concurrency: "unbounded" }),
      )
      .handle("submit", ({ payload }) => {
        const job: SubmitJob = {
          instance: payload.instance,
          action: payload.action,
          input: payload.input,
          ...(payload.priority !== undefined ? { priority: payload.priority } : {}),
          ...(payload.timeoutMillis !== undefined ? { timeout: Duration.millis(payload.timeoutMillis) } : {}),
          ...(payload.idempotencyKey !== undefined ? { idempotencyKey: payload.idempotencyKey } : {}),
        }
        return queue.submit(job).pipe(
          Effect.map((id) => ({ id })),
          Effect.mapError((refused) => new BadRequest({ error: refused.message })),
        )
      })
      .handle("get", ({ path }) =>
        isJobId(path.id)
          ? Effect.flatMap(queue.get(path.id), Option.match({ onNone: () => Effect.fail(noJob(path.id)), onSome: Effect.succeed }))
          : Effect.fail(noJob(path.id)),
      )
      .handle("logs", ({ path }) =>
        isJobId(path.id) ? queue.logs(path.id).pipe(Effect.map((lines) => ({ lines })), Effect.mapError(notFound)) : Effect.fail(noJob(path.id)),
      )
      .handle("cancel", ({ path }) => Effect.map(isJobId(path.id) ? queue.cancel(path.id) : Effect.succeed(false), (cancelled) => ({ cancelled })))
      .handle("priority", ({ path, payload }) =>
        Number.isFinite(payload.priority)
          ? Effect.map(isJobId(path.id) ? queue.reorder(path.id, payload.priority) : Effect.succeed(false), (reordered) => ({ reordered }))
          : Effect.fail(new BadRequest({ error: "priority must be a finite number" })),
      )
  }),
)

export const SequencesGroupLive = HttpApiBuilder.group(PlinthApi, "sequences", (handlers) =>
  Effect.gen(function* () {
    const queue = yield* JobQueue
    return handlers
      .handle("submit", ({ payload }) =>
        queue
          .submitSequence(payload.steps, {
            ...(payload.mode !== undefined ? { mode: payload.mode } : {}),
            ...(payload.priority !== undefined ? { priority: payload.priority } : {}),
          })
          .pipe(
            Effect.map((id) => ({ id })),
            Effect.mapError((refused) => new BadRequest({ error: refused.message })),
          ),
      )
      .handle("get", ({ path }) =>
        isSequenceId(path.id)
          ? Effect.flatMap(queue.getSequence(path.id), Option.match({ onNone: () => Effect.fail(noSequence(path.id)), onSome: Effect.succeed }))
          : Effect.fail(noSequence(path.id)),
      )
      .handle("cancel", ({ path }) =>
        Effect.map(isSequenceId(path.id) ? queue.cancelSequence(path.id) : Effect.succeed(false), (cancelled) => ({ cancelled })),
      )
  }),
)

/** Every POST: `Authorization: Bearer <token>`, compared in constant time. */
export const AuthorizationLive = (token: string) =>
  Layer.succeed(
    Authorization,
    Authorization.of({
      bearer: (given) =>
        tokenMatches(token, Redacted.value(given))
          ? Effect.void
          : Effect.fail(
              new Unauthorized({ error: "this request needs the server's token: send 'Authorization: Bearer <token>' (it is kept in <data-dir>/serve/token)" }),
            ),
    }),
  )
