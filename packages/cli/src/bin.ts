#!/usr/bin/env node
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect } from "effect"
import { runToExitCode } from "./Cli.js"
import { terminalLayer } from "./Colour.js"
import { exitCodeForExit } from "./ExitCode.js"
import { exitAfterOutputDrains } from "./Output.js"

const terminal = terminalLayer({
  env: process.env,
  stdoutIsTTY: process.stdout.isTTY === true,
  stderrIsTTY: process.stderr.isTTY === true,
  base: globalThis.console,
})

runToExitCode(process.argv, { interactive: process.stdin.isTTY === true }).pipe(
  Effect.provide(terminal),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({
    disableErrorReporting: true,
    // Exit only once stdout and stderr are flushed: a piped report is complete whatever the exit code.
    teardown: exitAfterOutputDrains(exitCodeForExit),
  }),
)
