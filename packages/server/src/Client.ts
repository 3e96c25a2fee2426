import { FetchHttpClient, HttpApiClient, HttpClient, HttpClientRequest } from "@effect/platform"
import { Data, Effect, Option, Predicate, Schema, Stream } from "effect"
import { isTerminal, Job, JobEvent, type JobId } from "@plinth/domain"
import { PlinthApi, type SubmitJobBody } from "./Api.js"
import { processAlive, readServerInfo, readToken, serverInfoPath } from "./ServeFiles.js"

/*
 * The client side of `plinth jobs …`: finds the running server through
 * `<dataDir>/serve/server.json`, authenticates with `<dataDir>/serve/token`,
 * and talks to it through a client derived from the same API definition
 * the server implements. Every failure is one `ServerCallFailed` with one line.
 */

export type ServerCallFailure = "noServer" | "unreachable" | "unauthorized" | "notFound" | "refused" | "unexpected"

export class ServerCallFailed extends Data.TaggedError("ServerCallFailed")<{
  readonly reason: ServerCallFailure
  readonly detail: string
  readonly status?: number
}> {
  override get message() {
    return this.detail
  }
}



const makeClient = (url: string, token: string | undefined) =>
  HttpApiClient.make(PlinthApi, {
    baseUrl: url,
    transformClient: token === undefined ? undefined : HttpClient.mapRequest(HttpClientRequest.bearerToken(token)),
  })

const noServer = (dataDir: string) =>
  new ServerCallFailed({
    reason: "noServer",
    detail: `no plinth serve is running for data dir ${dataDir}: start one with plinth serve`,
  })

/** The running server of a data directory, or a failure saying there is none. */
export const connect = (dataDir: string) =>
  Effect.gen(function* () {
    const info = readServerInfo(dataDir)
    // A server killed without its clean stop leaves server.json behind: its pid is gone.
    if (info === undefined || !processAlive(info.pid)) return yield* noServer(dataDir)
    const client = yield* makeClient(info.url, readToken(dataDir))
    return { url: info.url, dataDir, client }
  }).pipe(Effect.provide(FetchHttpClient.layer))

/** Every failure of a call, in one line. */
const explain =
  (connection: { readonly url: string; readonly dataDir: string }) =>
  (error: unknown): ServerCallFailed => {
    if (Predicate.isTagged(error, "NotFound")) return new ServerCallFailed({ reason: "notFound", detail: errorText(error), status: 404 })
    if (Predicate.isTagged(error, "Unauthorized"))
      return new ServerCallFailed({
        reason: "unauthorized",
        detail: `the server at ${connection.url} refused the token in ${connection.dataDir}/serve/token: is it the data dir the server was started with?`,
        status: 401,
      })
    if (Predicate.isTagged(error, "BadRequest")) return new ServerCallFailed({ reason: "refused", detail: errorText(error), status: 400 })
    if (Predicate.isTagged(error, "ForbiddenHost")) return new ServerCallFailed({ reason: "refused", detail: errorText(error), status: 403 })
    if (Predicate.isTagged(error, "RequestError"))
      return new ServerCallFailed({
        reason: "unreachable",
        detail: `cannot reach the plinth serve at ${connection.url} (named in ${serverInfoPath(connection.dataDir)}): is it still running?`,
      })
    const text = Predicate.hasProperty(error, "message") && typeof error.message === "string" ? error.message : String(error)
    return new ServerCallFailed({ reason: "unexpected", detail: `unexpected answer from ${connection.url}: ${text.split("\n")[0]}` })
  }

const errorText = (error: unknown) => (Predicate.hasProperty(error, "error") && typeof error.error === "string" ? error.error : String(error))

type Connected = Effect.Effect.Success<ReturnType<typeof connect>>

const call = <A, E>(connection: Connected, effect: (client: Connected["client"]) => Effect.Effect<A, E>) =>
  effect(connection.client).pipe(Effect.mapError(explain(connection)), Effect.catchAllDefect((defect) => Effect.fail(explain(connection)(defect))))

export const submitJob = (connection: Connected, body: SubmitJobBody) => call(connection, (client) => Effect.map(client.jobs.submit({ payload: body }), (r) => r.id))
export const listJobs = (connection: Connected) => call(connection, (client) => client.jobs.list())
export const getJob = (connection: Connected, id: string) => call(connection, (client) => client.jobs.get({ path: { id } }))
export const jobLogs = (connection: Connected, id: string) => call(connection, (client) => Effect.map(client.jobs.logs({ path: { id } }), (r) => r.lines))
export const cancelJob = (connection: Connected, id: string) => call(connection, (client) => Effect.map(client.jobs.cancel({ path: { id } }), (r) => r.cancelled))

/** One Server-Sent Event: a comment (`: text`) or an event with its data. */
export interface SseFrame {
  readonly comment?: string
  readonly event?: string
  readonly data?: string
}

/** Splits lines into frames at each blank line (the SSE wire format, without ids or retries). */
export const sseFrames = <E>(lines: Stream.Stream<string, E>): Stream.Stream<SseFrame, E> =>
  lines.pipe(
    Stream.mapAccum({} as { comment?: string; event?: string; data?: string }, (frame, line) => {
      if (line === "") return [{}, Option.some(frame)]
      if (line.startsWith(":")) return [{ ...frame, comment: line.slice(1).trim() }, Option.none()]
      const colon = line.indexOf(":")
      const field = colon === -1 ? line : line.slice(0, colon)
      const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "")
      if (field === "event") return [{ ...frame, event: value }, Option.none()]
      if (field === "data") return [{ ...frame, data: frame.data === undefined ? value : `${frame.data}\n${value}` }, Option.none()]
      return [frame, Option.none()]
    }),
    Stream.filterMap((frame) => Option.filter(frame, (f) => Object.keys(f).length > 0)),
  )

/** The server's event stream, as frames, from the moment the server has subscribed this client. */
export const eventFrames = (connection: Connected) =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      const controller = new AbortController()
      yield* Effect.addFinalizer(() => Effect.sync(() => controller.abort()))
      const response = yield* Effect.tryPromise({
        try: () => fetch(`${connection.url}/api/events`, { headers: { accept: "text/event-stream" }, signal: controller.signal }),
        catch: () => explain(connection)({ _tag: "RequestError" }),
      })
      if (!response.ok || response.body === null)
        return yield* new ServerCallFailed({ reason: "unexpected", detail: `${connection.url}/api/events answered ${response.status}`, status: response.status })
      const body = response.body
      return sseFrames(
        Stream.fromReadableStream(
          () => body,
          () => explain(connection)({ _tag: "RequestError" }),
        ).pipe(Stream.decodeText(), Stream.splitLines),
      )
    }),
  )

const decodeJobEvent = Schema.decodeUnknownOption(Schema.parseJson(JobEvent))

export type WatchItem =
  | { readonly _tag: "current"; readonly job: Job }
  | { readonly _tag: "event"; readonly event: JobEvent }
  | { readonly _tag: "done"; readonly job: Job }

/**
 * A job's events until it ends: first the job as it is (from after the
 * subscription, so nothing is missed between), then each of its events,
 * then the finished job. A job that has already ended gives only `done`.
 */
export const watchJob = (connection: Connected, id: string): Stream.Stream<WatchItem, ServerCallFailed> =>
  eventFrames(connection).pipe(
    Stream.mapEffect((frame): Effect.Effect<ReadonlyArray<WatchItem>, ServerCallFailed> => {
      if (frame.comment === "connected")
        return Effect.map(getJob(connection, id), (job) => [isTerminal(job.status) ? { _tag: "done", job } : { _tag: "current", job }])
      if (frame.event !== "job" || frame.data === undefined) return Effect.succeed([])
      const decoded = decodeJobEvent(frame.data)
      if (Option.isNone(decoded) || decoded.value.job !== (id as JobId)) return Effect.succeed([])
      const event = decoded.value
      if (event._tag === "stateChanged" && isTerminal(event.to))
        return Effect.map(getJob(connection, id), (job): ReadonlyArray<WatchItem> => [{ _tag: "event", event }, { _tag: "done", job }])
      return Effect.succeed([{ _tag: "event", event }])
    }),
    Stream.flattenIterables,
    Stream.takeUntil((item) => item._tag === "done"),
  )

export const encodeJob = Schema.encodeSync(Job)
export const encodeJobEvent = Schema.encodeSync(JobEvent)
