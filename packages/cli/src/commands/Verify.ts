import { Command } from "@effect/cli"
import { Effect } from "effect"
import { discoverAndVerify } from "@plinth/runtime"
import * as Common from "../CommonOptions.js"
import { formatOf, report, reportFailures } from "../Output.js"
import { withHashingProgress } from "../Progress.js"
import { renderVerified, verifiedJson, type VerifiedPlugin } from "../Render.js"

export interface VerifyOptions {
  readonly root: string
  readonly lock: string
  readonly json: boolean
}

/** What `plinth plugins verify` does once its command line is read (by the parser, or by `PlainCommandLine.ts`). */
export const runVerify = (options: VerifyOptions) => {
  const format = formatOf(options)
  return Effect.gen(function* () {
    const { lock, discovered } = yield* discoverAndVerify({ root: options.root, lock: options.lock }).pipe(withHashingProgress(format))
    const verified: Array<VerifiedPlugin> = discovered.map((plugin) => ({
      id: plugin.manifest.id,
      version: plugin.manifest.version,
      digest: lock.plugins[plugin.manifest.id]!.digest,
    }))
    yield* report(format, verified, (plugins, palette) => renderVerified(plugins, options.lock, palette), verifiedJson)
  }).pipe(reportFailures(format))
}

/** `plinth plugins verify`: checks every plugin against the lock without importing any plugin code. */
export const verify = Command.make("verify", { root: Common.root, lock: Common.lock, json: Common.json }, runVerify).pipe(
  Command.withDescription("Check every plugin's files against the lock. Runs no plugin code."),
)
