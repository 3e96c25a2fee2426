import type { Teardown } from "@effect/platform/Runtime"
import { Effect, type Exit, Match } from "effect"
import { UserOutput, type Palette } from "./Colour.js"
import type { HandlerFailure } from "./Failures.js"
import * as Render from "./Render.js"
import { renderManifestsStale } from "./DriftReport.js"

/** How a command reports: text for people, or exactly one JSON object on stdout for programs. */
export type OutputFormat = "human" | "json"

export const formatOf = (options: { readonly json: boolean }): OutputFormat => (options.json ? "json" : "human")

export const printJson = (value: unknown) => Effect.flatMap(UserOutput, (output) => output.out(JSON.stringify(value, null, 2)))

/** Prints a command's result in the chosen format: JSON on stdout, or text through the palette. */
export const report = <A>(
  format: OutputFormat,
  value: A,
  human: (value: A, palette: Palette) => string,
  json: (value: A) => unknown,
) =>
  format === "json" ? printJson(json(value)) : Effect.flatMap(UserOutput, (output) => output.out(human(value, output.palette)))

/** How to get help for a command. */
export const helpHint = (command: string) => `run '${command} --help' for usage`

/** The text a person sees on stderr for a failure. */
export const renderFailure = (failure: HandlerFailure, palette: Palette): string =>
  Match.value(failure).pipe(
    Match.tagsExhaustive({
      LockWriteFailed: (e) => Render.renderLockWriteFailed(e, palette),
      ReportWriteFailed: (e) => `${palette.bad("error")}: cannot write the report: ${Render.printable(e.path)}: ${Render.printable(e.detail)}`,
      ManifestWriteFailed: (e) => Render.renderManifestWriteFailed(e, palette),
      TraceUnavailable: (e) => Render.renderTraceUnavailable(e, palette),
      PluginCallFailed: (e) => Render.renderPluginCallFailed(e, palette),
      UnclassifiedFailure: (e) => Render.renderUnclassified(e, palette),
      InvalidJsonOption: (e) => Render.renderInvalidJson(e, palette),
      PluginNotFound: (e) => Render.renderPluginNotFound(e, palette),
      LockOutOfDate: (e) => Render.renderLockOutOfDate(e, palette),
      ManifestsStale: (e) => renderManifestsStale(e.plugins, palette),
      UsageError: (e) => `${palette.bad("usage error")}: ${e.message}\n${helpHint(e.command)}`,
      IntegrityMismatch: (e) => Render.renderRejection(e, palette),
      MissingManifest: (e) => Render.renderRejection(e, palette),
      SchemaViolation: (e) => Render.renderRejection(e, palette),
      UnlockedPlugin: (e) => Render.renderRejection(e, palette),
      MissingPluginDirectory: (e) => Render.renderRejection(e, palette),
      PluginImportError: (e) => Render.renderRejection(e, palette),
      SymlinkEscape: (e) => Render.renderRejection(e, palette),
      LockFileMalformed: (e) => Render.renderRejection(e, palette),
      LockFileMissing: (e) => Render.renderRejection(e, palette),
    }),
  )

/**
 * The JSON object a program sees on stdout for a failure, if it has one of
 * its own: `lock --check` has already printed its outcome, and usage errors
 * go to stderr as text.
 */
export const failureJson = (failure: HandlerFailure): unknown =>
  Match.value(failure).pipe(
    Match.tags({
      LockWriteFailed: Render.lockWriteFailedJson,
      ReportWriteFailed: (e) => ({ ok: false, error: { _tag: e._tag, path: e.path, detail: e.detail, message: `cannot write the report: ${e.path}: ${e.detail}` } }),
      ManifestWriteFailed: Render.manifestWriteFailedJson,
      TraceUnavailable: Render.traceUnavailableJson,
      PluginCallFailed: Render.pluginCallFailedJson,
      UnclassifiedFailure: Render.unclassifiedJson,
      InvalidJsonOption: Render.invalidJsonJson,
      PluginNotFound: Render.pluginNotFoundJson,
      LockOutOfDate: () => undefined,
      ManifestsStale: () => undefined,
      UsageError: () => undefined,
    }),
    Match.orElse(Render.rejectionJson),
  )

/** How a JSON object is laid out: indented, or on one line (for commands that print JSON Lines). */
export type JsonLayout = "indented" | "line"

const stringify = (value: unknown, layout: JsonLayout) => (layout === "line" ? JSON.stringify(value) : JSON.stringify(value, null, 2))

/** Reports a failure in the chosen format, then lets it through so its exit code can be decided. */
export const reportFailures =
  (format: OutputFormat, layout: JsonLayout = "indented") =>
  <A, E extends HandlerFailure, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R | UserOutput> =>
    Effect.tapError(effect, (failure) =>
      Effect.flatMap(UserOutput, (output) => {
        if (format === "human") return output.err(renderFailure(failure, output.palette))
        const json = failureJson(failure)
        if (json !== undefined) return output.out(stringify(json, layout))
        return failure._tag === "UsageError" ? output.err(renderFailure(failure, output.palette)) : Effect.void
      }),
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
