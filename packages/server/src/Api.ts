import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware, HttpApiSchema, HttpApiSecurity, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { Job, JobId, JobLogLine, JobSequence, QueueStats, SequenceId, SequenceMode, SequenceStep } from "@plinth/domain"

/*
 * The HTTP API of `plinth serve`, one definition for the server, its OpenAPI
 * document (`/openapi.json`) and the typed client `plinth jobs …` uses. Every
 * body is JSON; jobs, sequences, events and stats are the domain's Schemas,
 * encoded as they are. Errors carry one line for people in `error`. Every POST
 * needs `Authorization: Bearer <token>`; GETs need none. See ADR 0032.
 */

// Errors: one line in `error`, `_tag` for programs.
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", { error: Schema.String }, HttpApiSchema.annotations({ status: 404 })) {}
export class BadRequest extends Schema.TaggedError<BadRequest>()("BadRequest", { error: Schema.String }, HttpApiSchema.annotations({ status: 400 })) {}
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", { error: Schema.String }, HttpApiSchema.annotations({ status: 401 })) {}
/** A request whose Host header is not this server's loopback address (DNS rebinding). */
export class ForbiddenHost extends Schema.TaggedError<ForbiddenHost>()("ForbiddenHost", { error: Schema.String }, HttpApiSchema.annotations({ status: 403 })) {}

/** Checks the bearer token of mutating requests. */
export class Authorization extends HttpApiMiddleware.Tag<Authorization>()("@plinth/server/Authorization", {
  failure: Unauthorized,
  security: { bearer: HttpApiSecurity.bearer },
}) {}

export const PluginView = Schema.Struct({
  id: Schema.String,
  version: Schema.String,
  digest: Schema.String,
  /** Every plugin a server runs passed verification against the lock before any worker started. */
  lock: Schema.Literal("verified"),
})
export type PluginView = typeof PluginView.Type

/** A managed instance as the API shows it: its config is left out (it is the operator's, and may name secrets). */
export const InstanceView = Schema.Struct({
  id: Schema.String,
  plugin: Schema.String,
  enabled: Schema.Boolean,
  disabledReason: Schema.optional(Schema.String),
  pid: Schema.optional(Schema.Number),
  consecutiveFailures: Schema.Number,
  maxConcurrent: Schema.Number,
  running: Schema.Number,
  waiting: Schema.Number,
  /** The worker's resident memory, read when the list was asked for. */
  rssBytes: Schema.optional(Schema.Number),
})
export type InstanceView = typeof InstanceView.Type

const IdPath = Schema.Struct({ id: Schema.String })

export const SubmitJobBody = Schema.Struct({
  instance: Schema.String,
  action: Schema.String,
  input: Schema.optional(Schema.Unknown),
  priority: Schema.optional(Schema.Number),
  timeoutMillis: Schema.optional(Schema.Number),
  idempotencyKey: Schema.optional(Schema.String),
})
export type SubmitJobBody = typeof SubmitJobBody.Type

export const SubmitSequenceBody = Schema.Struct({
  steps: Schema.Array(SequenceStep),
  mode: Schema.optional(SequenceMode),
  priority: Schema.optional(Schema.Number),
})
export type SubmitSequenceBody = typeof SubmitSequenceBody.Type

export const JobsView = Schema.Struct({
  pending: Schema.Array(Job),
  running: Schema.Array(Job),
  history: Schema.Array(Job),
  stats: QueueStats,
})

export const serverGroup = HttpApiGroup.make("server")
  .add(HttpApiEndpoint.get("plugins", "/api/plugins").addSuccess(Schema.Struct({ plugins: Schema.Array(PluginView) })))
  .add(HttpApiEndpoint.get("instances", "/api/instances").addSuccess(Schema.Struct({ instances: Schema.Array(InstanceView) })))
  .add(
    HttpApiEndpoint.get("events", "/api/events")
      .addSuccess(Schema.String.pipe(HttpApiSchema.withEncoding({ kind: "Text", contentType: "text/event-stream" })))
      .annotate(
        OpenApi.Description,
        "Server-Sent Events: `event: job` with a JobEvent, `event: instance` with a ManagerEvent, a `: ping` comment every 15 s.",
      ),
  )

export const jobsGroup = HttpApiGroup.make("jobs")
  .add(HttpApiEndpoint.get("list", "/api/jobs").addSuccess(JobsView))
  .add(
    HttpApiEndpoint.post("submit", "/api/jobs")
      .setPayload(SubmitJobBody)
      .addSuccess(Schema.Struct({ id: JobId }), { status: 201 })
      .addError(BadRequest)
      .middleware(Authorization),
  )
  .add(HttpApiEndpoint.get("get", "/api/jobs/:id").setPath(IdPath).addSuccess(Job).addError(NotFound))
  .add(HttpApiEndpoint.get("logs", "/api/jobs/:id/logs").setPath(IdPath).addSuccess(Schema.Struct({ lines: Schema.Array(JobLogLine) })).addError(NotFound))
  .add(HttpApiEndpoint.post("cancel", "/api/jobs/:id/cancel").setPath(IdPath).addSuccess(Schema.Struct({ cancelled: Schema.Boolean })).middleware(Authorization))
  .add(
    HttpApiEndpoint.post("priority", "/api/jobs/:id/priority")
      .setPath(IdPath)
      .setPayload(Schema.Struct({ priority: Schema.Number }))
      .addSuccess(Schema.Struct({ reordered: Schema.Boolean }))
      .addError(BadRequest)
      .middleware(Authorization),
  )

export const sequencesGroup = HttpApiGroup.make("sequences")
  .add(
    HttpApiEndpoint.post("submit", "/api/sequences")
      .setPayload(SubmitSequenceBody)
      .addSuccess(Schema.Struct({ id: SequenceId }), { status: 201 })
      .addError(BadRequest)
      .middleware(Authorization),
  )
  .add(HttpApiEndpoint.get("get", "/api/sequences/:id").setPath(IdPath).addSuccess(JobSequence).addError(NotFound))
  .add(HttpApiEndpoint.post("cancel", "/api/sequences/:id/cancel").setPath(IdPath).addSuccess(Schema.Struct({ cancelled: Schema.Boolean })).middleware(Authorization))

export class PlinthApi extends HttpApi.make("plinth")
  .add(serverGroup)
  .add(jobsGroup)
  .add(sequencesGroup)
  .addError(BadRequest)
  .addError(ForbiddenHost)
  .annotate(OpenApi.Title, "Plinth")
  .annotate(OpenApi.Description, "Plugins, instances and the job queue of a running `plinth serve`. POST requests need `Authorization: Bearer <token>`.") {}
