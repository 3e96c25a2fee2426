import { Command, Options } from "@effect/cli"
import { Effect } from "effect"
import { CallTrace, CallTraceLive } from "@plinth/runtime"
import * as Common from "../CommonOptions.js"
import { checkLimit } from "../OperationInput.js"
import { formatOf, report, reportFailures } from "../Output.js"
import { renderTrace, traceJson } from "../Render.js"

export const DEFAULT_LIMIT = 20

const limit = Options.integer("limit").pipe(
  Options.withDefault(DEFAULT_LIMIT),
  Options.mapEffect(Common.checked(checkLimit)),
  Options.withDescription(`How many of the most recent calls to show (default ${DEFAULT_LIMIT}).`),
)

/** `plinth plugins trace`: the recorded calls of recent `invoke` runs, oldest first; runs no plugin code. */
export const trace = Command.make("trace", { limit, json: Common.json, trace: Common.trace }, (options) => {
  const format = formatOf(options)
  return Effect.gen(function* () {
    const { calls, skipped } = yield* Effect.flatMap(CallTrace, (history) => history.recent(options.limit))
    yield* report(format, { file: options.trace, calls, skipped }, renderTrace, traceJson)
  }).pipe(Effect.provide(CallTraceLive(options.trace)), reportFailures(format))
}).pipe(
  Command.withDescription(
    "Show the recorded history of plugin calls (time, plugin, instance, action, duration, outcome), oldest first. Runs no plugin code.",
  ),
)
