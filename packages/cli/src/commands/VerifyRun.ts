import { Effect } from "effect"
import { discoverAndVerify } from "@plinth/runtime"
import { formatOf, report, reportFailures } from "../Output.js"
import { withHashingProgress } from "../Progress.js"
import { renderVerified, verifiedJson, type VerifiedPlugin } from "../Render.js"

// Apart from the command's declaration (Verify.ts), so that a plain `verify` line loads none of the parser (ADR 0018).

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

