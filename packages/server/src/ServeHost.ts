import { Effect, Layer } from "effect"
import { JobQueueLive, listPlugins, PlinthHost, PluginManager, type IsolationTier, type JobQueue, type JobQueueOptions } from "@plinth/runtime"
import type { PluginView } from "./Api.js"
import { ensureToken, removeServerInfo, serverInfoPath, ServeStateUnavailable, tokenPath, writeServerInfo } from "./ServeFiles.js"
import { isLoopback, PlinthServer, ServerLive, DEFAULT_HOST, DEFAULT_PORT } from "./Server.js"

/*
 * `plinth serve` as a program: verify and load the plugin root (PlinthHost),
 * start each plugin's default instance, run the job queue over the manager
 * (journaled in the stores' database) and the HTTP server over both, write
 * `<dataDir>/serve/server.json`, and run until interrupted. Interruption
 * (SIGINT, SIGTERM) closes everything in reverse: server.json is removed,
 * the server stops listening and drops its connections, the queue shuts
 * down, every worker stops, the stores flush and close.
 */

export interface ServeOptions {
  readonly root: string
  readonly lock: string
  readonly dataDir: string
  readonly host?: string
  readonly port?: number
  readonly isolation?: IsolationTier
  readonly queue?: JobQueueOptions
}

/** What the program tells its caller as it goes (the CLI prints these). */
export interface ServeReporter {
  readonly warning: (line: string) => Effect.Effect<void>
  readonly listening: (info: {
    readonly url: string
    /** The dashboard's address; with `#token=` only when the token was made by this start. */
    readonly dashboard: string
    readonly tokenCreated: boolean
    readonly tokenPath: string
    readonly instances: ReadonlyArray<string>
  }) => Effect.Effect<void>
}

/**
 * The job queue over a host's manager and stores: the layer `serve` runs, the
 * queue's journal included. `queue` replaces the single-host queue (journaled
 * in `<dataDir>/plinth.db`) with another built over the host's PluginManager:
 * `plinth serve --cluster` passes @plinth/cluster's `JobQueueCluster`, a
 * runner of a cluster, so the server neither depends on nor loads that
 * package. The HTTP API, the dashboard and `plinth jobs` are the same over
 * either: both provide the same JobQueue service.
 */
export const ServeHostLayer = <E = never>(options: ServeOptions, queue?: Layer.Layer<JobQueue, E, PluginManager>) => {
  const host = PlinthHost({
    root: options.root,
    lock: options.lock,
    dataDir: options.dataDir,
    ...(options.isolation !== undefined ? { isolation: options.isolation } : {}),
  })
  if (queue === undefined) return JobQueueLive(options.queue).pipe(Layer.provideMerge(host))
  // A runner takes jobs as soon as its queue is up, and a job for an instance not loaded is refused: each
  // plugin's default instance is started first. One that will not start is tried again, and reported, by `serve`.
  const started = Layer.effectDiscard(
    Effect.flatMap(PluginManager, (manager) => Effect.forEach(manager.plugins, (plugin) => Effect.ignore(manager.load(plugin)), { discard: true })),
  )
  return queue.pipe(Layer.provide(started), Layer.provideMerge(host))
}

/** Loads each plugin's default instance; one that will not start is reported and left out, the others serve. */
const loadDefaultInstances = (reporter: ServeReporter) =>
  Effect.gen(function* () {
    const manager = yield* PluginManager
    const loaded: Array<string> = []
    for (const plugin of manager.plugins) {
      yield* manager.load(plugin).pipe(
        Effect.tap((instance) => Effect.sync(() => loaded.push(instance.id))),
        Effect.catchAll((failure) => reporter.warning(`warning: ${plugin} did not start, so its jobs will fail: ${oneLine(failure)}`)),
      )
    }
    return loaded
  })

const oneLine = (failure: unknown): string =>
  (failure instanceof Error || (typeof failure === "object" && failure !== null && "message" in failure) ? String((failure as { message: unknown }).message) : String(failure))
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .join("; ")

/** Runs until interrupted; fails only while starting (verification, the stores, the port). */
export const serve = (options: ServeOptions, reporter: ServeReporter) =>
  Effect.gen(function* () {
    const host = options.host ?? DEFAULT_HOST
    if (!isLoopback(host)) {
      yield* reporter.warning(
        `warning: listening on ${host}, not loopback: anyone who can reach this address can read the queue and, with the token, submit work`,
      )
    }
    const manager = yield* PluginManager
    const summaries = yield* listPlugins({ root: options.root, lock: options.lock })
    const plugins: ReadonlyArray<PluginView> = summaries.flatMap((summary) =>
      manager.plugins.includes(summary.id) && summary.lockedDigest._tag === "Some"
        ? [{ id: summary.id, version: summary.manifest.version, digest: summary.lockedDigest.value, lock: "verified" as const }]
        : [],
    )
    const { token, created } = yield* Effect.try({
      try: () => ensureToken(options.dataDir),
      catch: (error) => new ServeStateUnavailable({ path: tokenPath(options.dataDir), detail: error instanceof Error ? error.message : String(error) }),
    })
    yield* Effect.gen(function* () {
      const server = yield* PlinthServer
      // Listening first: a port in use fails before any worker starts. Jobs submitted meanwhile wait for their instance.
      const instances = yield* loadDefaultInstances(reporter)
      yield* Effect.acquireRelease(
        Effect.try({
          try: () => writeServerInfo(options.dataDir, { url: server.url, pid: process.pid }),
          catch: (error) => new ServeStateUnavailable({ path: serverInfoPath(options.dataDir), detail: error instanceof Error ? error.message : String(error) }),
        }),
        () => Effect.sync(() => removeServerInfo(options.dataDir)),
      )
      yield* reporter.listening({
        url: server.url,
        dashboard: created ? `${server.url}/#token=${token}` : `${server.url}/`,
        tokenCreated: created,
        tokenPath: tokenPath(options.dataDir),
        instances,
      })
      return yield* Effect.never
    }).pipe(
      // server.json goes first, so no client finds a server that is stopping.
      Effect.scoped,
      Effect.provide(
        ServerLive({ host, port: options.port ?? DEFAULT_PORT, token, plugins }),
      ),
    )
  })
