import { Command } from "@effect/cli"
import * as Common from "../CommonOptions.js"
import { runVerify } from "./VerifyRun.js"

/** `plinth plugins verify`: checks every plugin against the lock without importing any plugin code. */
export const verify = Command.make("verify", { root: Common.root, lock: Common.lock, json: Common.json }, runVerify).pipe(
  Command.withDescription("Check every plugin's files against the lock. Runs no plugin code."),
)
