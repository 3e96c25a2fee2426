import { Args, Command, Options } from "@effect/cli"
import { Duration, Effect, Option, Stream } from "effect"
import type { Job, JobEvent } from "@plinth/domain"
import { type Palette, UserOutput } from "../Colour.js"
import * as Common from "../CommonOptions.js"
import { JobsRequestFailed, JobUnsuccessful } from "../Failures.js"
import { group } from "./Group.js"
import { parseDuration, parseJsonOption } from "../OperationInput.js"
import { formatOf, printJson, reportFailures } from "../Output.js"
import { oneLine, renderValue } from "../Render.js"

/*
 * `plinth jobs …`: the job queue of a running `plinth serve`, found through
 * `<data-dir>/serve/server.json`, authenticated with `<data-dir>/serve/token`.
 * The client is imported when a command runs (it is the server package's),
 * so other commands start as before.
 */

const loadClient = Effect.promise(() => import("@plinth/server"))

/** The client's failures as the CLI reports them. */
const asFailure = (error: { readonly reason: JobsRequestFailed["reason"]; readonly detail: string; readonly status?: number }) =>
  new JobsRequestFailed({ reason: error.reason, detail: error.detail, ...(error.status !== undefined ? { status: error.status } : {}) })

/** Runs `use` against the data directory's server. */
const withServer = <A, E, R>(dataDir: string, use: (client: typeof import("@plinth/server"), connection: ConnectionOf) => Effect.Effect<A, E, R>) =>
  Effect.flatMap(loadClient, (client) => Effect.flatMap(Effect.mapError(client.connect(dataDir), asFailure), (connection) => use(client, connection)))

type ConnectionOf = Effect.Effect.Success<ReturnType<typeof import("@plinth/server").connect>>

const jobId = Args.text({ name: "id" }).pipe(Args.withDescription("The job's id, as submit printed it (job-…)."))
const instance = Args.text({ name: "instance" }).pipe(Args.withDescription("The instance to run the job on (a plugin id for its default instance)."))
const action = Args.text({ name: "action" }).pipe(Args.withDescription("The action to call."))
// Help for these options is written in Docs.ts.
const input = Options.text("input").pipe(Options.withPseudoName("json"), Options.optional)
const priority = Options.integer("priority").pipe(Options.optional)
const timeout = Options.text("timeout").pipe(Options.withPseudoName("duration"), Options.mapEffect(Common.checked(parseDuration)), Options.optional)
const idempotencyKey = Options.text("idempotency-key").pipe(Options.withPseudoName("key"), Options.optional)

const percent = (progress: number) => (progress < 0 ? "" : `${Math.round(progress * 100)}%`)

const time = (millis: number | undefined) => (millis === undefined ? "" : new Date(millis).toISOString())

const statusWord = (status: Job["status"], palette: Palette) =>
  status === "completed" ? palette.ok(status) : status === "failed" || status === "cancelled" ? palette.bad(status) : status

const jobLine = (job: Job, palette: Palette) =>
  [job.id, statusWord(job.status, palette), `${oneLine(job.instance)} ${oneLine(job.action)}`, `priority ${job.priority}`, percent(job.progress)]
    .filter((part) => part !== "")
    .join("  ")

const renderJob = (job: Job, palette: Palette): string =>
  [
    jobLine(job, palette),
    `submitted ${time(job.submittedAt)}${job.startedAt !== undefined ? `, started ${time(job.startedAt)}` : ""}${job.finishedAt !== undefined ? `, finished ${time(job.finishedAt)}` : ""}`,
    ...(job.retryCount > 0 ? [`retries: ${job.retryCount}`] : []),
    ...(job.statusMessage !== undefined ? [`message: ${oneLine(job.statusMessage)}`] : []),
    ...(job.blockReason !== undefined ? [`waiting: ${oneLine(job.blockReason)}`] : []),
    ...(job.cancelPhase !== undefined ? [`cancel: ${job.cancelPhase}`] : []),
    ...(job.error !== undefined ? [`${palette.bad("error")} [${job.error.tag}, ${job.error.category}]: ${oneLine(job.error.message)}`] : []),
    ...(job.result !== undefined ? [`result: ${renderValue(job.result)}`] : []),
  ].join("\n")

const renderEvent = (event: JobEvent): string | undefined => {
  const at = time(event.at)
  switch (event._tag) {
    case "submitted":
      return `${at}  submitted`
    case "stateChanged":
      return `${at}  ${event.from} -> ${event.to}`
    case "progressChanged":
      return `${at}  progress ${percent(event.progress)}${event.message !== undefined ? ` ${oneLine(event.message)}` : ""}`
    case "cancelPhaseChanged":
      return `${at}  cancel: ${event.to}`
    case "blockReasonChanged":
      return event.reason !== undefined ? `${at}  waiting: ${oneLine(event.reason)}` : `${at}  no longer waiting`
    case "retryStarted":
      return `${at}  retry (attempt ${event.attempt}, by the ${event.by}) after ${oneLine(event.failure)}`
    case "priorityChanged":
      return `${at}  priority ${event.from} -> ${event.to}`
    case "resourceSnapshot":
      return undefined
    case "sequenceAdvanced":
      return `${at}  sequence step ${event.index} ${event.stepStatus}`
  }
}

/** The outcome of a finished job as the command's result: success for completed, its failure otherwise. */
const outcome = (job: Job) =>
  job.status === "completed"
    ? Effect.void
    : Effect.fail(
        new JobUnsuccessful({
          job: job.id,
          status: job.status === "cancelled" ? "cancelled" : "failed",
          ...(job.error !== undefined ? { error: { category: job.error.category, tag: job.error.tag, message: job.error.message } } : {}),
        }),
      )

export const submit = Command.make(
  "submit",
  { instance, action, input, priority, timeout, idempotencyKey, dataDir: Common.dataDir, json: Common.json },
  (options) => {
    const format = formatOf(options)
    return Effect.gen(function* () {
      const inputValue = Option.isSome(options.input) ? yield* parseJsonOption("--input", options.input.value) : null
      const id = yield* withServer(options.dataDir, (client, connection) =>
        Effect.mapError(
          client.submitJob(connection, {
            instance: options.instance,
            action: options.action,
            input: inputValue,
            ...(Option.isSome(options.priority) ? { priority: options.priority.value } : {}),
            ...(Option.isSome(options.timeout) ? { timeoutMillis: Duration.toMillis(options.timeout.value) } : {}),
            ...(Option.isSome(options.idempotencyKey) ? { idempotencyKey: options.idempotencyKey.value } : {}),
          }),
          asFailure,
        ),
      )
      if (format === "json") return yield* printJson({ ok: true, id })
      yield* Effect.flatMap(UserOutput, (output) => output.out(id))
    }).pipe(reportFailures(format))
  },
).pipe(Command.withDescription("Queue a job on the running plinth serve and print its id."))

export const list = Command.make("list", { dataDir: Common.dataDir, json: Common.json }, (options) => {
  const format = formatOf(options)
  return Effect.gen(function* () {
    const { client, jobs } = yield* withServer(options.dataDir, (client, connection) =>
      Effect.map(Effect.mapError(client.listJobs(connection), asFailure), (jobs) => ({ client, jobs })),
    )
    if (format === "json")
      return yield* printJson({
        ok: true,
        pending: jobs.pending.map((job) => client.encodeJob(job)),
        running: jobs.running.map((job) => client.encodeJob(job)),
        history: jobs.history.map((job) => client.encodeJob(job)),
        stats: jobs.stats,
      })
    const output = yield* UserOutput
    const { stats } = jobs
    const lines = [...jobs.running, ...jobs.pending, ...jobs.history].map((job) => jobLine(job, output.palette))
    yield* output.out(
      [
        `${stats.running} running, ${stats.pending} pending; ${stats.completed} completed, ${stats.failed} failed, ${stats.cancelled} cancelled; ${stats.throughput.toFixed(1)} jobs/s`,
        ...lines,
      ].join("\n"),
    )
  }).pipe(reportFailures(format))
}).pipe(Command.withDescription("List the running plinth serve's jobs: running, pending in the order they will run, then finished, newest first."))

export const show = Command.make("show", { id: jobId, dataDir: Common.dataDir, json: Common.json }, (options) => {
  const format = formatOf(options)
  return Effect.gen(function* () {
    const { client, job, logs } = yield* withServer(options.dataDir, (client, connection) =>
      Effect.mapError(
        Effect.map(Effect.all([client.getJob(connection, options.id), client.jobLogs(connection, options.id)]), ([job, logs]) => ({ client, job, logs })),
        asFailure,
      ),
    )
    if (format === "json") return yield* printJson({ ok: true, job: client.encodeJob(job), logs })
    const output = yield* UserOutput
    yield* output.out(
      [renderJob(job, output.palette), ...(logs.length > 0 ? ["log:", ...logs.map((line) => `  ${time(line.at)} ${line.stream}: ${oneLine(line.line)}`)] : [])].join("\n"),
    )
  }).pipe(reportFailures(format))
}).pipe(Command.withDescription("Show one job of the running plinth serve: its state, result or error, and its log."))

export const cancel = Command.make("cancel", { id: jobId, dataDir: Common.dataDir, json: Common.json }, (options) => {
  const format = formatOf(options)
  return Effect.gen(function* () {
    const { cancelled, job } = yield* withServer(options.dataDir, (client, connection) =>
      Effect.mapError(
        Effect.flatMap(
          client.cancelJob(connection, options.id),
          (cancelled): Effect.Effect<{ readonly cancelled: boolean; readonly job: Job | undefined }, import("@plinth/server").ServerCallFailed> =>
            // Not cancelled: finished, or unknown (a 404 from the lookup says which).
            cancelled ? Effect.succeed({ cancelled, job: undefined }) : Effect.map(client.getJob(connection, options.id), (job) => ({ cancelled, job })),
        ),
        asFailure,
      ),
    )
    if (format === "json") return yield* printJson({ ok: true, cancelled, ...(job !== undefined ? { status: job.status } : {}) })
    const output = yield* UserOutput
    yield* output.out(cancelled ? `${options.id}: cancelling` : `${options.id}: not cancelled, it has already ended (${job?.status ?? "unknown"})`)
  }).pipe(reportFailures(format))
}).pipe(Command.withDescription("Cancel a pending or running job of the running plinth serve."))

export const watch = Command.make("watch", { id: jobId, dataDir: Common.dataDir, json: Common.json }, (options) => {
  const format = formatOf(options)
  return Effect.gen(function* () {
    const output = yield* UserOutput
    const last = yield* withServer(options.dataDir, (client, connection) =>
      client.watchJob(connection, options.id).pipe(
        Stream.mapError(asFailure),
        Stream.tap((item) => {
          if (format === "json") return item._tag === "event" ? printJson({ event: client.encodeJobEvent(item.event) }) : Effect.void
          if (item._tag === "current") return output.err(jobLine(item.job, output.palette))
          if (item._tag === "event") {
            const line = renderEvent(item.event)
            return line === undefined ? Effect.void : output.err(output.palette.dim(line))
          }
          return Effect.void
        }),
        Stream.runLast,
        Effect.map((item) => ({ client, item })),
      ),
    )
    const done = Option.flatMap(last.item, (item) => (item._tag === "done" ? Option.some(item.job) : Option.none()))
    if (Option.isNone(done)) return yield* new JobsRequestFailed({ reason: "unreachable", detail: "the server closed the event stream before the job ended" })
    const job = done.value
    if (format === "json") yield* job.status === "completed" ? printJson({ ok: true, job: last.client.encodeJob(job) }) : Effect.void
    else yield* output.out(renderJob(job, output.palette))
    yield* outcome(job)
  }).pipe(reportFailures(format))
}).pipe(Command.withDescription("Print a job's events until it ends; exit 0 when it completed, its failure's exit code otherwise (130 when cancelled)."))

/** `plinth jobs …`: the job queue of a running `plinth serve`. */
export const jobs = group({
  parents: ["plinth"],
  name: "jobs",
  description: "Submit, list, show, cancel and watch the jobs of a running plinth serve.",
  subcommands: [submit, list, show, cancel, watch],
})
