#!/usr/bin/env node
import { isatty } from "node:tty"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect } from "effect"
import { terminalLayer } from "./Colour.js"
import { exitCodeForExit } from "./ExitCode.js"
import { exitAfterOutputDrains } from "./Output.js"
import { plainVerify } from "./PlainCommandLine.js"

const terminal = terminalLayer({
  env: process.env,
  stdoutIsTTY: process.stdout.isTTY === true,
  stderrIsTTY: process.stderr.isTTY === true,
  base: globalThis.console,
})

// A plain `plugins verify` line loads only what verifying needs; anything else loads the whole CLI and its
// parser. Imported when needed, so that in the bundle neither is evaluated before it is chosen (ADR 0018).
const plain = plainVerify(process.argv.slice(2), process.env)
const program =
  plain !== undefined
    ? Effect.flatMap(
        Effect.promise(() => import("./PlainVerify.js")),
        (module) => module.runPlainVerify(plain, process.argv),
      )
    : Effect.flatMap(
        Effect.promise(() => import("./Cli.js")),
        // Whether stdin is a terminal, without `process.stdin`: that builds a stream (and loads its modules) nothing reads.
        (module) => module.runToExitCode(process.argv, { interactive: isatty(0) }),
      )

program.pipe(
  Effect.provide(terminal),
  NodeRuntime.runMain({
    disableErrorReporting: true,
    // Plinth logs nothing through Effect's logger: no pretty logger to set up.
    disablePrettyLogger: true,
    // Exit only once stdout and stderr are flushed: a piped report is complete whatever the exit code. Then
    // exit at once, success too: left to end by itself, Node first waits for V8's background tasks (~7 ms).
    teardown: (exit) => exitAfterOutputDrains(exitCodeForExit)(exit, (code) => process.exit(code)),
  }),
)
