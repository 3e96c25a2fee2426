import { Command, Options } from "@effect/cli"
import { Config, Effect, Either, Option, Predicate, Schema } from "effect"
import { PluginRejected } from "@plinth/domain"
import { clusterSettings } from "../ClusterOptions.js"
import { UserOutput } from "../Colour.js"
import * as Common from "../CommonOptions.js"
import { ServeFailed, UsageError, type HandlerFailure } from "../Failures.js"
import { isolationWarningsToStderr } from "../IsolationWarning.js"
import { reportFailures } from "../Output.js"
import { oneLine } from "../Render.js"
import { clusterServe } from "./ServeCluster.js"

// Help for these options is written in Docs.ts.
const port = Options.integer("port").pipe(Options.withPseudoName("port"), Options.withDefault(7717))
const host = Options.text("host").pipe(Options.withPseudoName("address"), Options.withDefault("127.0.0.1"))
const cluster = Options.boolean("cluster")
// Read from PLINTH_DATABASE_URL in the handler when absent, so that a URL with its password need not be on the command line.
const database = Options.text("database").pipe(Options.withPseudoName("url"), Options.optional)
const runnerAddress = Options.text("runner-address").pipe(Options.withPseudoName("host:port"), Options.optional)
const runnerListen = Options.text("runner-listen").pipe(Options.withPseudoName("host:port"), Options.optional)

const isRejection = Schema.is(PluginRejected)

/** What serving failed with, as a failure the CLI reports: rejections and store errors as they are, anything else in one line. */
const asHandlerFailure = (error: unknown): HandlerFailure => {
  if (isRejection(error)) return error
  if (Predicate.isTagged(error, "StoreUnavailable") || Predicate.isTagged(error, "StoreSchemaMismatch") || Predicate.isTagged(error, "PluginNotFound"))
    return error as HandlerFailure
  const message = Predicate.hasProperty(error, "message") && typeof error.message === "string" ? error.message : String(error)
  return new ServeFailed({ message: oneLine(message) })
}

/**
 * `plinth serve`: a long-running host. Verifies the plugin root, starts each
 * plugin's default instance, runs the job queue and the HTTP API with the
 * dashboard until SIGINT or SIGTERM, then stops every worker and exits 130,
 * as every interrupted plinth command does. The server's code is imported
 * here, when the command runs, so that other commands start as before; the
 * cluster's (@effect/cluster, Postgres) only with `--cluster`, which swaps the
 * single-host queue for a runner of a cluster: the same API, dashboard and
 * `plinth jobs`, the jobs shared with the cluster's other runners.
 */
export const serve = Command.make(
  "serve",
  { root: Common.root, lock: Common.lock, dataDir: Common.dataDir, port, host, isolation: Common.isolation, cluster, database, runnerAddress, runnerListen },
  (options) =>
    Effect.gen(function* () {
      if (options.port < 0 || options.port > 65535)
        return yield* new ServeFailed({ message: `--port ${options.port} is not a port: use 0 to 65535 (0 picks a free one)` })
      const fromEnvironment = yield* Config.option(Config.string("PLINTH_DATABASE_URL")).pipe(Effect.orElseSucceed(() => Option.none<string>()))
      const settings = clusterSettings({
        cluster: options.cluster,
        database: Option.getOrUndefined(Option.orElse(options.database, () => fromEnvironment)),
        databaseFlag: Option.isSome(options.database),
        runnerAddress: Option.getOrUndefined(options.runnerAddress),
        runnerListen: Option.getOrUndefined(options.runnerListen),
      })
      if (Either.isLeft(settings)) return yield* new UsageError({ message: settings.left, command: "plinth serve" })
      const output = yield* UserOutput
      const server = yield* Effect.promise(() => import("@plinth/server"))
      const clustered = settings.right === undefined ? undefined : yield* clusterServe(settings.right)
      const serveOptions = {
        root: options.root,
        lock: options.lock,
        dataDir: options.dataDir,
        host: options.host,
        port: options.port,
        ...(Option.isSome(options.isolation) ? { isolation: options.isolation.value } : {}),
      }
      yield* server
        .serve(serveOptions, {
          warning: (line) => output.err(output.palette.dim(line)),
          listening: (info) =>
            output.out(
              [
                `plinth serve: listening on ${info.url}, ${info.instances.length} instance${info.instances.length === 1 ? "" : "s"}${info.instances.length > 0 ? `: ${info.instances.join(", ")}` : ""}`,
                info.tokenCreated
                  ? `dashboard: ${info.dashboard}\n  the token is printed this once; it is kept in ${info.tokenPath}`
                  : `dashboard: ${info.dashboard} (requests that change anything need the token in ${info.tokenPath})`,
                ...(clustered !== undefined ? [clustered.line] : []),
                "stop with Ctrl-C (or SIGTERM): every worker is stopped first",
              ].join("\n"),
            ),
        })
        .pipe(
          Effect.provide(server.ServeHostLayer(serveOptions, clustered?.queue)),
          isolationWarningsToStderr,
          (serving) => (clustered !== undefined ? clustered.logging(serving) : serving),
          Effect.mapError((error) => clustered?.failure(error) ?? asHandlerFailure(error)),
        )
    }).pipe(reportFailures("human")),
).pipe(
  Command.withDescription(
    "Run the plugins as a long-running host: the job queue, an HTTP API and a live dashboard on 127.0.0.1:7717 until Ctrl-C. Runs plugin code.",
  ),
)
