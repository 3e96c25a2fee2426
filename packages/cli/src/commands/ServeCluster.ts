import { Cause, Effect, Logger, LogLevel, Predicate } from "effect"
import type { ClusterSettings } from "../ClusterOptions.js"
import { ClusterJoinRefused, ServeFailed, type HandlerFailure } from "../Failures.js"
import { oneLine } from "../Render.js"

/*
 * What `plinth serve --cluster` adds to `plinth serve`: the cluster's job
 * queue (a runner) in place of the single-host one, the line saying so at
 * start, its failures as the CLI reports them, and @effect/cluster's log kept
 * to warnings, one line each on stderr. @plinth/cluster is imported here, when
 * `--cluster` is given, so that no other command loads it.
 */

/** Effect's level labels ("WARN") as a person writes them: "warning". */
const levelWord = (logLevel: LogLevel.LogLevel): string => (logLevel._tag === "Warning" ? "warning" : logLevel.label.toLowerCase())

/** @effect/cluster logs its runner's comings and goings at info: a host operator needs only what went wrong. */
const warningsToStderr = Logger.make(({ logLevel, message, cause }) => {
  const text = (Array.isArray(message) ? message : [message]).map((part) => (typeof part === "string" ? part : String(part))).join(" ")
  const reason = Cause.isEmpty(cause) ? "" : `: ${Cause.pretty(cause).split("\n")[0] ?? ""}`
  process.stderr.write(`cluster ${levelWord(logLevel)}: ${oneLine(text + reason)}\n`)
})

export const clusterServe = (settings: ClusterSettings) =>
  Effect.map(
    Effect.promise(() => import("@plinth/cluster")),
    (cluster) => {
      // pg 8 warns (DeprecationWarning, on stderr) when a query is queued on a client already running one, as
      // @effect/sql-pg does: nothing a host operator can act on.
      process.noDeprecation = true
      const listening = settings.listen ?? settings.runner
      return {
        queue: cluster.JobQueueCluster({
          database: settings.database,
          runner: settings.runner,
          ...(settings.listen !== undefined ? { listen: settings.listen } : {}),
        }),
        line:
          `cluster: runner ${cluster.runnerName(settings.runner)}${settings.listen !== undefined ? ` (listening on ${cluster.runnerName(settings.listen)})` : ""} ` +
          `of the cluster in ${cluster.displayDatabase(settings.database)}; jobs are shared with its other runners`,
        logging: <A, E, R>(self: Effect.Effect<A, E, R>) =>
          self.pipe(Logger.withMinimumLogLevel(LogLevel.Warning), Effect.provide(Logger.replace(Logger.defaultLogger, warningsToStderr))),
        /** The cluster's own failures as the CLI reports them; undefined for any other. */
        failure: (error: unknown): HandlerFailure | undefined => {
          if (error instanceof cluster.ClusterLockMismatch)
            return new ClusterJoinRefused({
              message: error.message,
              clusterDigest: error.clusterDigest,
              runnerDigest: error.runnerDigest,
              runners: error.runners,
            })
          // The runner's port: @effect/platform's SocketServerError, whose own message is only "Open".
          if (Predicate.isTagged(error, "SocketServerError")) {
            const cause = Predicate.hasProperty(error, "cause") ? error.cause : undefined
            const code = Predicate.hasProperty(cause, "code") ? cause.code : undefined
            const detail =
              code === "EADDRINUSE"
                ? "the address is in use (another runner on this host?)"
                : code === "EADDRNOTAVAIL"
                  ? "it is not an address of this host (behind NAT? add --runner-listen 0.0.0.0:PORT)"
                  : Predicate.hasProperty(cause, "message") && typeof cause.message === "string"
                    ? cause.message
                    : "it could not be opened"
            return new ServeFailed({
              message: oneLine(`cannot listen for other runners on ${cluster.runnerName(listening)}: ${detail}; pass another --runner-address or --runner-listen`),
            })
          }
          return undefined
        },
      }
    },
  )
