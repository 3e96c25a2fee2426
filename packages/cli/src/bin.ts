#!/usr/bin/env node
import { isatty } from "node:tty"
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

// Whether stdin is a terminal, without `process.stdin`: that builds a stream (and loads its modules) nothing reads.
runToExitCode(process.argv, { interactive: isatty(0) }).pipe(
  Effect.provide(terminal),
  NodeRuntime.runMain({
    disableErrorReporting: true,
    // Exit only once stdout and stderr are flushed: a piped report is complete whatever the exit code.
    teardown: exitAfterOutputDrains(exitCodeForExit),
  }),
)
