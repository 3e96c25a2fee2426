import { Args, Command, Options } from "@effect/cli"
import { Clock, Effect, Option } from "effect"
import { checkDeclarations, describeLocalPlugin } from "@plinth/runtime"
import { isolationWarningsToStderr } from "../IsolationWarning.js"
import * as Common from "../CommonOptions.js"
import { declarationCheckJson, renderDeclarationCheck } from "../DriftReport.js"
import { classifyOperationFailure, ManifestsStale, ManifestWriteFailed, UsageError, type OperationFailure } from "../Failures.js"
import { formatOf, report, reportFailures } from "../Output.js"
import { describeOutcomeJson, renderDescribeOutcome } from "../Render.js"

const COMMAND = "plinth plugins describe"

const id = Args.text({ name: "id" }).pipe(
  Args.withDescription("The plugin id (its folder name). Optional with --check, which then checks every plugin."),
  Args.optional,
)

const write = Options.boolean("write").pipe(
  Options.withDescription("Store the declaration in the plugin's plugin.json; review the change, then run 'plinth plugins lock'."),
)

const check = Options.boolean("check").pipe(
  Options.withDescription(
    "Change nothing; verify every plugin against the lock, load each (or only <id>) from its verified bytes, " +
      "and exit 3 if a manifest differs from what its code declares (for CI).",
  ),
)

/** Whatever a describe run fails with, sorted for its exit code; a failure to write plugin.json stays itself. */
const classified = (plugin: string) => (error: unknown) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    Effect.fail<ManifestWriteFailed | OperationFailure>(
      error instanceof ManifestWriteFailed ? error : classifyOperationFailure({ plugin, instance: "", time: new Date(now) })(error),
    ),
  )

/**
 * `plinth plugins describe <id>`: loads the plugin as it is on disk in a
 * sandboxed worker and prints what its code declares. An operation, not an
 * observation: it runs plugin code (for authors, before review and locking).
 *
 * `--check` is the drift check for CI: it reads the lock (`--lock`) and runs
 * the verified bytes, what a start would run, not the files as found (ADR 22).
 * Without `--check` the lock is not read: an author describes code that is
 * not locked yet.
 */
export const describe = Command.make(
  "describe",
  { id, write, check, json: Common.json, root: Common.root, lock: Common.lock, isolation: Common.isolation },
  (options) => {
    const format = formatOf(options)
    const isolation = Option.isSome(options.isolation) ? { isolation: options.isolation.value } : {}
    const only = Option.getOrUndefined(options.id)

    const checkAll = Effect.gen(function* () {
      const outcome = yield* checkDeclarations({ root: options.root, lock: options.lock, ...(only !== undefined ? { only } : {}), ...isolation }).pipe(
        isolationWarningsToStderr,
        Effect.catchAllDefect((defect) => Effect.fail(defect)),
        Effect.catchAll(classified(only ?? "")),
      )
      // Stale under --json is a failure like any other (as for `lock --check`): the envelope carries the differences.
      if (outcome.upToDate || format === "human") {
        yield* report(format, outcome, (o, palette) => renderDeclarationCheck(o, options.lock, palette), declarationCheckJson)
      }
      if (!outcome.upToDate) {
        const stale = declarationCheckJson(outcome).plugins.filter((plugin) => !plugin.upToDate)
        return yield* new ManifestsStale({ plugins: stale.map((plugin) => plugin.id), differences: stale })
      }
    })

    const describeOne = (plugin: string) =>
      Effect.gen(function* () {
        const outcome = yield* describeLocalPlugin({ root: options.root, id: plugin, write: options.write, ...isolation }).pipe(
          isolationWarningsToStderr,
          Effect.catchTag("SystemError", "BadArgument", (e) => Effect.fail(new ManifestWriteFailed({ plugin, detail: e.message }))),
        )
        yield* report(
          format,
          outcome,
          (o, palette) => renderDescribeOutcome(plugin, o, palette),
          (o) => describeOutcomeJson(plugin, o),
        )
      }).pipe(Effect.catchAllDefect((defect) => Effect.fail(defect)), Effect.catchAll(classified(plugin)))

    const run = Effect.gen(function* () {
      if (options.check && options.write) {
        return yield* new UsageError({ message: "--check changes nothing; it cannot be combined with --write", command: COMMAND })
      }
      if (options.check) return yield* checkAll
      if (only === undefined) return yield* new UsageError({ message: "describe needs a plugin id, or --check to check every plugin", command: COMMAND })
      return yield* describeOne(only)
    })
    return reportFailures(format)(run)
  },
).pipe(
  Command.withDescription(
    "Load a plugin in a sandboxed worker and print what its code declares: actions with input/output JSON Schemas, " +
      "and the config schema. RUNS PLUGIN CODE (use 'show' to read the manifest without running anything). " +
      "--write stores the declaration in plugin.json; re-lock after review. " +
      "--check (for CI) verifies every plugin against --lock, loads each from its verified bytes and exits 3 when a manifest is stale; " +
      "without --check the lock is not read (an author describes code before locking it).",
  ),
)
