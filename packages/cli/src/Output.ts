import type { Teardown } from "@effect/platform/Runtime"
import { Effect, type Exit } from "effect"
import { UserOutput, type Palette } from "./Colour.js"
import { failureJson, stringify } from "./Envelope.js"
import type { HandlerFailure } from "./Failures.js"
import { helpHint, renderFailure } from "./FailureText.js"

/** How a command reports: text for people, or exactly one JSON object on stdout for programs. */
export type OutputFormat = "human" | "json"

export const formatOf = (options: { readonly json: boolean }): OutputFormat => (options.json ? "json" : "human")

/** Prints one `--json` object, on one line (ADR 0019). */
export const printJson = (value: unknown) => Effect.flatMap(UserOutput, (output) => output.out(stringify(value)))

/** Prints a command's result in the chosen format: JSON on stdout, or text through the palette. */
export const report = <A>(
  format: OutputFormat,
  value: A,
  human: (value: A, palette: Palette) => string,
  json: (value: A) => unknown,
) =>
  format === "json" ? printJson(json(value)) : Effect.flatMap(UserOutput, (output) => output.out(human(value, output.palette)))

export { failureJson, helpHint, renderFailure }

/**
 * Reports a failure in the chosen format, then lets it through so its exit
 * code can be decided: text on stderr for people, the failure envelope on
 * stdout under `--json`.
 */
export const reportFailures =
  (format: OutputFormat) =>
  <A, E extends HandlerFailure, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R | UserOutput> =>
    Effect.tapError(effect, (failure) =>
      Effect.flatMap(UserOutput, (output) =>
        format === "human" ? output.err(renderFailure(failure, output.palette)) : output.out(stringify(failureJson(failure))),
      ),
    )

/**
 * `runMain`'s teardown: waits until everything written to stdout and stderr
 * has left the process, then exits with the run's code. `process.exit` drops
 * writes still queued for a pipe (a `--json` report over 64 KiB piped to
 * another program would be cut off), so the exit waits for an empty write on
 * each stream, which completes after every earlier write.
 */
export const exitAfterOutputDrains =
  (exitCode: (exit: Exit.Exit<unknown, unknown>) => number, streams: ReadonlyArray<NodeJS.WritableStream> = [process.stdout, process.stderr]): Teardown =>
  (exit, onExit) => {
    const code = exitCode(exit)
    let pending = streams.length
    if (pending === 0) return onExit(code)
    const drained = () => {
      if (--pending === 0) onExit(code)
    }
    for (const stream of streams) {
      try {
        // The callback runs once the writes queued ahead of it are flushed, or with an error (a closed pipe): done either way.
        stream.write("", () => drained())
      } catch {
        drained()
      }
    }
  }
