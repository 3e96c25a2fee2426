import { HttpApiBuilder, type HttpApiError, type HttpApp, HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { createServer } from "node:http"
import { hostname, networkInterfaces } from "node:os"
import { Context, Data, Effect, Layer, Predicate, Ref } from "effect"
import type { JobQueue, PluginManager } from "@plinth/runtime"
import { BadRequest, ForbiddenHost, PlinthApi, type PluginView } from "./Api.js"
import { assetContentTypes, isAssetName, readAsset, type AssetName } from "./Assets.js"
import { SseConnections, SseConnectionsLive, type EventStreamOptions } from "./EventStream.js"
import { AuthorizationLive, JobsGroupLive, SequencesGroupLive, ServedPlugins, ServerGroupLive } from "./Handlers.js"

/*
 * The HTTP server of `plinth serve`: the API (HttpApi), its OpenAPI document,
 * the dashboard's files and the event stream, on Node's http server. Bound to
 * 127.0.0.1 by default. Every request's Host header must name this server
 * (loopback names, or the address it was told to bind): a page on another
 * site that rebinds its DNS name to 127.0.0.1 is refused. See ADR 0032.
 */

export const DEFAULT_HOST = "127.0.0.1"
export const DEFAULT_PORT = 7717

export interface ServerOptions extends EventStreamOptions {
  /** Default 127.0.0.1. */
  readonly host?: string
  /** Default 7717; 0 picks a free port. */
  readonly port?: number
  /** The bearer token every POST needs. */
  readonly token: string
  /** The verified plugins, as `GET /api/plugins` lists them. */
  readonly plugins: ReadonlyArray<PluginView>
}

/** A running server: where it listens, and how many event streams are open. */
export class PlinthServer extends Context.Tag("@plinth/server/PlinthServer")<
  PlinthServer,
  {
    readonly url: string
    readonly host: string
    readonly port: number
    readonly eventStreams: Effect.Effect<number>
  }
>() {}

/** The server could not listen: the port is taken, the address is not this machine's. */
export class ListenFailed extends Data.TaggedError("ListenFailed")<{ readonly host: string; readonly port: number; readonly detail: string }> {
  override get message() {
    return `cannot listen on ${this.host}:${this.port}: ${this.detail}; pass another --port (0 picks a free one) or --host`
  }
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"])

export const isLoopback = (host: string) => LOOPBACK.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host)

/** The host names a request may name in its Host header: loopback, the bound address, and for a wildcard bind this machine's own. */
const allowedHostNames = (host: string): ReadonlySet<string> => {
  const names = new Set([...LOOPBACK, host.toLowerCase()])
  if (host === "0.0.0.0" || host === "::") {
    names.add(hostname().toLowerCase())
    for (const addresses of Object.values(networkInterfaces()))
      for (const address of addresses ?? []) names.add(address.family === "IPv6" ? `[${address.address}]` : address.address)
  }
  if (host.includes(":") && !host.startsWith("[")) names.add(`[${host.toLowerCase()}]`)
  return names
}

/** Whether a request's Host header names a server bound to `host`: loopback names, the bound address, this machine's for a wildcard bind. */
export const isAllowedHost = (host: string, header: string | undefined): boolean =>
  header !== undefined && allowedHostNames(host).has(hostNameOf(header))

/** The name part of a Host header (`name:port`, `[v6]:port`, `name`). */
const hostNameOf = (header: string): string => {
  const value = header.trim().toLowerCase()
  if (value.startsWith("[")) return value.slice(0, value.indexOf("]") + 1)
  const colon = value.lastIndexOf(":")
  return colon === -1 ? value : value.slice(0, colon)
}

/** One line out of a decode failure: where, and what. */
const describeDecodeError = (error: HttpApiError.HttpApiDecodeError): string => {
  const issue = error.issues[0]
  if (issue === undefined) return "the request does not match the API: see /openapi.json"
  const where = issue.path.length === 0 ? "the request body" : issue.path.map(String).join(".")
  return `bad request: ${where}: ${issue.message.split("\n").join(" ")}; see /openapi.json`
}

/** Host check first, then the handlers; failures to read or decode a request become one-line 400s. */
const GuardLive = (host: string) =>
  HttpApiBuilder.middleware(
    PlinthApi,
    Effect.sync(() => {
      const allowed = allowedHostNames(host)
      return (app: HttpApp.Default) =>
        Effect.gen(function* () {
          const request = yield* HttpServerRequest.HttpServerRequest
          const header = request.headers["host"]
          if (header === undefined || !allowed.has(hostNameOf(header))) {
            return yield* new ForbiddenHost({
              error: `this server answers only requests addressed to it (Host 127.0.0.1 or localhost), not ${JSON.stringify(header ?? "")}`,
            })
          }
          // The app's type says it cannot fail; at run time it fails with what the handlers and decoding fail with.
          return yield* (app as Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, HttpServerRequest.HttpServerRequest>).pipe(
            Effect.catchAll((error) =>
              Predicate.isTagged(error, "HttpApiDecodeError")
                ? Effect.fail(new BadRequest({ error: describeDecodeError(error as HttpApiError.HttpApiDecodeError) }))
                : Predicate.isTagged(error, "RequestError")
                  ? Effect.fail(new BadRequest({ error: "bad request: the body is not JSON" }))
                  : Effect.fail(error as never),
            ),
            // A body that is not JSON reaches here as a defect of the request's reading.
            Effect.catchAllDefect((defect) =>
              Predicate.isTagged(defect, "RequestError") ? Effect.fail(new BadRequest({ error: "bad request: the body is not JSON" })) : Effect.die(defect),
            ),
          )
        })
    }),
  )

const PAGE_HEADERS = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  // The page's script and stylesheet come from /assets; it talks only to this server.
  "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
}

const serveAsset = (name: AssetName) =>
  Effect.flatMap(
    Effect.promise(() => readAsset(name)),
    (bytes) =>
      bytes === undefined
        ? HttpServerResponse.json({ error: `no ${name} in this installation` }, { status: 404 })
        : Effect.succeed(HttpServerResponse.uint8Array(bytes, { contentType: assetContentTypes[name], headers: PAGE_HEADERS })),
  )

/** `GET /` is the dashboard; `GET /assets/<name>` its files, by a fixed list of names. */
const StaticRoutesLive = HttpApiBuilder.Router.use((router) =>
  Effect.gen(function* () {
    yield* router.get("/", serveAsset("index.html"))
    yield* router.get(
      "/assets/:name",
      Effect.flatMap(HttpRouter.params, (params) => {
        const name = params["name"] ?? ""
        return isAssetName(name) ? serveAsset(name) : HttpServerResponse.json({ error: `no asset ${JSON.stringify(name)}` }, { status: 404 })
      }),
    )
  }),
)

/**
 * The server, listening, for as long as the layer lives. Closing it closes
 * every connection (open event streams included) and stops listening.
 */
export const ServerLive = (options: ServerOptions): Layer.Layer<PlinthServer, ListenFailed, PluginManager | JobQueue> => {
  const host = options.host ?? DEFAULT_HOST
  const port = options.port ?? DEFAULT_PORT
  const nodeServer = createServer()
  const ApiLive = HttpApiBuilder.api(PlinthApi).pipe(
    Layer.provide([ServerGroupLive(options), JobsGroupLive, SequencesGroupLive]),
    Layer.provide(Layer.succeed(ServedPlugins, options.plugins)),
  )
  const Http = HttpApiBuilder.serve().pipe(
    Layer.provide(HttpApiBuilder.middlewareOpenApi()),
    Layer.provide(StaticRoutesLive),
    Layer.provide(GuardLive(host)),
    Layer.provide(ApiLive),
    Layer.provide(AuthorizationLive(options.token)),
  )
  const Running = Layer.scoped(
    PlinthServer,
    Effect.gen(function* () {
      const server = yield* HttpServer.HttpServer
      const connections = yield* SseConnections
      // Open event streams would keep the server from closing: end every connection first.
      yield* Effect.addFinalizer(() => Effect.sync(() => nodeServer.closeAllConnections()))
      const address = server.address
      const boundPort = address._tag === "TcpAddress" ? address.port : port
      const urlHost = host.includes(":") ? `[${host}]` : host
      return { url: `http://${urlHost}:${boundPort}`, host, port: boundPort, eventStreams: Ref.get(connections) }
    }),
  )
  return Layer.merge(Running, Http).pipe(
    Layer.provide(SseConnectionsLive),
    Layer.provide(
      NodeHttpServer.layer(() => nodeServer, { host, port }).pipe(
        Layer.catchAll((error) => Layer.fail(new ListenFailed({ host, port, detail: listenDetail(error) }))),
      ),
    ),
  )
}

const listenDetail = (error: unknown): string => {
  const cause = Predicate.hasProperty(error, "cause") ? error.cause : error
  const code = Predicate.hasProperty(cause, "code") ? String(cause.code) : undefined
  if (code === "EADDRINUSE") return "the address is in use (another plinth serve?)"
  if (code === "EADDRNOTAVAIL") return "the address is not one of this machine's"
  if (code === "EACCES") return "permission denied"
  return cause instanceof Error ? cause.message : String(cause)
}
