import { Args, Command, Options } from "@effect/cli"
import { Clock, Effect, Option } from "effect"
import { describeLocalPlugin } from "@plinth/runtime"
import { isolationWarningsToStderr } from "../IsolationWarning.js"
import * as Common from "../CommonOptions.js"
import { classifyOperationFailure, ManifestWriteFailed, type OperationFailure } from "../Failures.js"
import { formatOf, report, reportFailures } from "../Output.js"
import { describeOutcomeJson, renderDescribeOutcome } from "../Render.js"

const id = Args.text({ name: "id" }).pipe(Args.withDescription("The plugin id (its folder name)."))

const write = Options.boolean("write").pipe(
  Options.withDescription("Store the declaration in the plugin's plugin.json; review the change, then run 'plinth plugins lock'."),
)

/**
 * `plinth plugins describe <id>`: loads the plugin as it is on disk in a
 * sandboxed worker and prints what its code declares. An operation, not an
 * observation: it runs plugin code (for authors, before review and locking).
 */
export const describe = Command.make("describe", { id, write, json: Common.json, root: Common.root, isolation: Common.isolation }, (options) => {
  const format = formatOf(options)
  return Effect.gen(function* () {
    const outcome = yield* describeLocalPlugin({
      root: options.root,
      id: options.id,
      write: options.write,
      ...(Option.isSome(options.isolation) ? { isolation: options.isolation.value } : {}),
    }).pipe(
      isolationWarningsToStderr,
      Effect.catchTag("SystemError", "BadArgument", (e) => Effect.fail(new ManifestWriteFailed({ plugin: options.id, detail: e.message }))),
    )
    yield* report(
      format,
      outcome,
      (o, palette) => renderDescribeOutcome(options.id, o, palette),
      (o) => describeOutcomeJson(options.id, o),
    )
  }).pipe(
    Effect.catchAllDefect((defect) => Effect.fail(defect)),
    Effect.catchAll((error) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.fail<ManifestWriteFailed | OperationFailure>(
          error instanceof ManifestWriteFailed
            ? error
            : classifyOperationFailure({ plugin: options.id, instance: "", time: new Date(now) })(error),
        ),
      ),
    ),
    reportFailures(format),
  )
}).pipe(
  Command.withDescription(
    "Load a plugin in a sandboxed worker and print what its code declares: actions with input/output JSON Schemas, " +
      "and the config schema. RUNS PLUGIN CODE (use 'show' to read the manifest without running anything). " +
      "--write stores the declaration in plugin.json; re-lock after review.",
  ),
)
