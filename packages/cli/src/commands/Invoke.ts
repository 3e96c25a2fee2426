import { Args, Command, Options } from "@effect/cli"
import { Clock, Effect, Layer, Option, Ref, Runtime } from "effect"
import { existsSync } from "node:fs"
import { join } from "node:path"
import { PluginDisabled } from "@plinth/domain"
import {
  CallTrace,
  CallTraceLive,
  ConfigStore,
  ConfigStoreLive,
  DatabaseLive,
  databasePath,
  EmpiricalStoreLive,
  invokePlugin,
  SecretStoreLive,
  TelemetryLive,
  type CallRecord,
} from "@plinth/runtime"
import { isolationWarningsToStderr } from "../IsolationWarning.js"
import { UserOutput } from "../Colour.js"
import * as Common from "../CommonOptions.js"
import { classifyOperationFailure } from "../Failures.js"
import { inputText, parseInput } from "../InputSource.js"
import { parseDuration, parseJsonOption } from "../OperationInput.js"
import { formatOf, printJson, reportFailures } from "../Output.js"
import { invocationJson, itemJsonLine, progressLines, renderInvocationDone, renderItem, renderValue } from "../Render.js"

const id = Args.text({ name: "id" }).pipe(Args.withDescription("The plugin id (its folder name)."))
const action = Args.text({ name: "action" }).pipe(Args.withDescription("The action to call."))

// Help for these options is written in Docs.ts.
const input = Options.text("input").pipe(Options.withPseudoName("json"), Options.optional)

// Plain text, not `Options.file`: a file that cannot be read is an input failure (exit 5), like input that is not JSON.
const inputFile = Options.text("input-file").pipe(Options.withPseudoName("file"), Options.optional)

const config = Options.text("config").pipe(
  Options.withPseudoName("json"),
  Options.optional,
  Options.withDescription("The plugin's config as JSON; its defaults fill in what is left out. Refused by the manifest's config schema: exit 5, before the worker starts."),
)

const timeout = Options.text("timeout").pipe(
  Options.withPseudoName("duration"),
  Options.mapEffect(Common.checked(parseDuration)),
  Options.optional,
  // Any length works: the runtime chains timers past setTimeout's 2^31 ms instead of firing at once.
  Options.withDescription("Cancel the call if it has not finished within this (waiting for its worker included), e.g. 500ms, 5s, 2m, 48h; exit 6."),
)

const json = Options.boolean("json")

const force = Options.boolean("force")

/**
 * What `plinth plugins config` and `disable` recorded for the plugin. Without
 * a database there is nothing recorded: none is created just to find that out.
 */
const persistedState = (dataDir: string, plugin: string) =>
  existsSync(databasePath({ dataDir }))
    ? Effect.flatMap(ConfigStore, (store) => store.get(plugin)).pipe(Effect.provide(ConfigStoreLive.pipe(Layer.provide(DatabaseLive({ dataDir })))))
    : Effect.succeed(Option.none())

/**
 * Where the call's measured cost goes (`plinth plugins stats` reads it): the
 * EmpiricalStore in `<data-dir>/plinth.db`. A database that cannot be opened
 * costs the statistics, never the call.
 */
const measuredCost = (dataDir: string) =>
  EmpiricalStoreLive().pipe(
    Layer.provide(DatabaseLive({ dataDir })),
    Layer.catchAll(() => Layer.empty),
  )

/**
 * A CallTrace that writes to `file` and also keeps the last record, so that a
 * failure can name the instance it happened in and a success its duration.
 */
const recordingTrace = (file: string, last: Ref.Ref<Option.Option<CallRecord>>) =>
  Layer.effect(
    CallTrace,
    Effect.map(CallTrace, (trace) =>
      CallTrace.of({ ...trace, record: (call) => Effect.zipRight(Ref.set(last, Option.some(call)), trace.record(call)) }),
    ),
  ).pipe(Layer.provide(CallTraceLive(file)))

/**
 * `plinth plugins invoke <id> <action>`: verifies every plugin, starts the one
 * named in a sandboxed worker and calls the action. This runs plugin code.
 * With `--json`, stdout is JSON Lines: `{"item": …}` per streamed item, then
 * one outcome object (`"ok": true` with `result` or `items`, or a failure).
 */
export const invoke = Command.make(
  "invoke",
  { id, action, input, inputFile, config, timeout, force, json, root: Common.root, lock: Common.lock, trace: Common.trace, isolation: Common.isolation, dataDir: Common.dataDir },
  (options) => {
    const format = formatOf(options)
    return Effect.gen(function* () {
      // Both are read before anything is verified or started.
      const inputValue = yield* Effect.flatMap(inputText(options, "plinth plugins invoke"), parseInput)
      const given = Option.isSome(options.config) ? yield* parseJsonOption("--config", options.config.value) : undefined
      // The persisted state applies unless a flag overrides it: --config replaces the stored config, --force calls a disabled plugin.
      const stored = yield* persistedState(options.dataDir, options.id)
      if (Option.isSome(stored) && !stored.value.enabled && !options.force) {
        return yield* new PluginDisabled({
          plugin: options.id,
          instance: options.id,
          reason: `by 'plinth plugins disable'; run 'plinth plugins enable ${options.id}', or pass --force for this call`,
        })
      }
      const configValue = given ?? Option.getOrUndefined(Option.map(stored, (record) => record.config))
      const output = yield* UserOutput
      const runtime = yield* Effect.runtime<never>()
      const lastCall = yield* Ref.make(Option.none<CallRecord>())
      const progress = progressLines()
      const outcome = yield* invokePlugin({
        root: options.root,
        lock: options.lock,
        plugin: options.id,
        action: options.action,
        input: inputValue,
        ...(configValue !== undefined ? { config: configValue } : {}),
        ...(Option.isSome(options.timeout) ? { timeout: options.timeout.value } : {}),
        // The data directory holds the secret store and the folders `dataDir` grants create.
        startOptions: {
          dataRoot: join(options.dataDir, "data"),
          ...(Option.isSome(options.isolation) ? { isolation: options.isolation.value } : {}),
        },
        ...(format === "human"
          ? {
              onProgress: (report) => {
                const line = progress(report)
                if (line !== undefined) Runtime.runSync(runtime)(output.err(output.palette.dim(line)))
              },
            }
          : {}),
        onItem: (item) => output.out(format === "json" ? itemJsonLine(item) : renderItem(item)),
      }).pipe(
        Effect.provide(recordingTrace(options.trace, lastCall)),
        Effect.provide(measuredCost(options.dataDir)),
        // The plugin's declared secrets are read from here at start (ADR 0026).
        Effect.provide(SecretStoreLive(options.dataDir)),
        // Spans exported over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise nothing is loaded (ADR 0031).
        Effect.provide(TelemetryLive),
        isolationWarningsToStderr,
        // A defect is fatal, like any failure outside the taxonomy.
        Effect.catchAllDefect((defect) => Effect.fail(defect)),
        Effect.catchAll((error) =>
          Effect.gen(function* () {
            const instance = Option.match(yield* Ref.get(lastCall), { onNone: () => "", onSome: (call) => call.instance })
            const time = new Date(yield* Clock.currentTimeMillis)
            return yield* Effect.fail(classifyOperationFailure({ plugin: options.id, instance, time })(error))
          }),
        ),
      )
      if (format === "json") return yield* printJson(invocationJson(options.id, options.action, outcome))
      if (outcome.kind === "value") yield* output.out(renderValue(outcome.value))
      const durationMs = Option.getOrUndefined(Option.map(yield* Ref.get(lastCall), (call) => call.durationMs))
      yield* output.err(renderInvocationDone(options.id, options.action, outcome, durationMs, output.palette))
    }).pipe(reportFailures(format))
  },
).pipe(
  Command.withDescription(
    "Verify the plugins, start one in a sandboxed worker and call an action; streamed items print as they arrive. " +
      "Runs plugin code. Exit codes: 5 input, 6 transient, 7 resource, 8 fatal.",
  ),
)
