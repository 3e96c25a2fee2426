import { Effect } from "effect"
import { VerifyLive } from "@plinth/runtime"
import { runVerify } from "./commands/VerifyRun.js"
import type { PlainVerify } from "./PlainCommandLine.js"
import { withRootFolder } from "./RootFolder.js"
import { toExitCode } from "./ToExitCode.js"

/**
 * Runs a plain `plinth plugins verify` line (`plainVerify`) to its exit code,
 * as the parser's path would, on the layers verifying needs. `bin.ts` imports
 * this module alone for such a line, so none of the parser, the other commands
 * or what starting plugins needs is loaded (ADR 0018).
 */
export const runPlainVerify = (options: PlainVerify, argv: ReadonlyArray<string>) =>
  toExitCode(withRootFolder("verify", options, runVerify(options)).pipe(Effect.provide(VerifyLive)), argv)
