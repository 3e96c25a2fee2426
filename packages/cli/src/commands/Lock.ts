import { Command, Options } from "@effect/cli"
import { Effect } from "effect"
import { lockPlugins } from "@plinth/runtime"
import * as Common from "../CommonOptions.js"
import { LockOutOfDate } from "../Failures.js"
import { formatOf, report, reportFailures } from "../Output.js"
import { withHashingProgress } from "../Progress.js"
import { lockOutcomeJson, renderLockOutcome } from "../Render.js"

const check = Options.boolean("check").pipe(
  Options.withDescription("Change nothing; exit 3 if the lock does not pin the plugins as they are on disk."),
)

/** `plinth plugins lock`: re-pins the plugins after review and prints what changed. */
export const lock = Command.make(
  "lock",
  { root: Common.root, lock: Common.lock, check, json: Common.json },
  (options) => {
    const format = formatOf(options)
    return Effect.gen(function* () {
      const outcome = yield* lockPlugins({ root: options.root, lock: options.lock, check: options.check }).pipe(withHashingProgress(format))
      const outOfDate = !outcome.upToDate && !outcome.written
      // Out of date under --json is a failure like any other: the envelope carries the changes.
      if (!(outOfDate && format === "json")) {
        yield* report(format, outcome, (o, palette) => renderLockOutcome(o, options.lock, palette), lockOutcomeJson)
      }
      if (outOfDate) {
        return yield* new LockOutOfDate({ lock: options.lock, root: options.root, missing: !outcome.lockFound, changes: outcome.changes })
      }
    }).pipe(reportFailures(format))
  },
).pipe(Command.withDescription("Pin the plugins as they are on disk in the lock, after review; prints what changed."))
