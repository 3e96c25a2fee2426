import { Match } from "effect"
import { plainPalette } from "./Colour.js"
import type { HandlerFailure } from "./Failures.js"
import { renderFailure } from "./FailureText.js"
import * as Render from "./Render.js"

/*
 * The one JSON shape of every command under `--json` (ADR 0019):
 *
 *   success  {"ok": true, …the command's fields}
 *   failure  {"ok": false, "error": {"_tag": …, …the error's fields, "message": one line}}
 *
 * printed compact, one object per line; only a streaming `invoke` prints more
 * than one line (JSON Lines: its items, then the outcome). Failures may carry
 * more beside `error`: `job` (the JobError summary of a plugin call) and
 * `rejection` (the same object as `error`, a deprecated alias kept for
 * programs written against 0.1's `verify --json`).
 */

export interface ErrorObject {
  readonly _tag: string
  readonly message: string
  readonly [field: string]: unknown
}

export interface FailureEnvelope {
  readonly ok: false
  readonly error: ErrorObject
  readonly [extra: string]: unknown
}

/**
 * A message on one line: the leading label of the human text (`rejected
 * [IntegrityMismatch]: `, `usage error: `) dropped, since `_tag` says it, and
 * its further lines joined with "; ".
 */
export const oneLineMessage = (text: string): string => {
  const lines = text
    .replace(/^[a-z][a-z ]*(?: \[[A-Za-z]+\])?: /, "")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")
  return lines.reduce((message, line) => (message === "" ? line : message.endsWith(":") ? `${message} ${line}` : `${message}; ${line}`), "")
}

/** The message of a failure: what a person would read on stderr, on one line. */
export const failureMessage = (failure: HandlerFailure): string => oneLineMessage(renderFailure(failure, plainPalette))

/**
 * The error object with `_tag` first, whatever order the encoder used, and the message last: the
 * error's own message when it has one (a plugin's failure does), else the one a person reads.
 */
const tagFirst = ({ _tag, ...fields }: { readonly _tag: string } & Record<string, unknown>, message: string): ErrorObject => ({
  _tag,
  ...fields,
  message: typeof fields["message"] === "string" && fields["message"] !== "" ? oneLineMessage(fields["message"]) : message,
})

const envelope = (fields: { readonly _tag: string } & Record<string, unknown>, message: string, extra: Record<string, unknown> = {}): FailureEnvelope => ({
  ok: false,
  error: tagFirst(fields, message),
  ...extra,
})

/** The JSON object a program sees on stdout for a failure. */
export const failureJson = (failure: HandlerFailure): FailureEnvelope => {
  const message = failureMessage(failure)
  return Match.value(failure).pipe(
    Match.tagsExhaustive({
      LockWriteFailed: (e) => envelope(Render.lockWriteFailedJson(e).error, message),
      ReportWriteFailed: (e) => envelope({ _tag: e._tag, path: e.path, detail: e.detail }, message),
      ManifestWriteFailed: (e) => envelope(Render.manifestWriteFailedJson(e).error, message),
      TraceUnavailable: (e) => envelope(Render.traceUnavailableJson(e).error, message),
      SecretStoreUnavailable: (e) => envelope({ _tag: e._tag, path: e.path, detail: e.detail }, message),
      StoreUnavailable: (e) => envelope({ _tag: e._tag, path: e.path, reason: e.reason }, message),
      StoreSchemaMismatch: (e) => envelope({ _tag: e._tag, path: e.path, expected: e.expected, found: e.found, detail: e.detail }, message),
      ConfigInvalid: (e) => envelope({ _tag: e._tag, plugin: e.plugin, fieldsInvalid: e.fieldsInvalid, detail: e.detail }, message),
      PluginDisabled: (e) =>
        envelope({ _tag: e._tag, plugin: e.plugin, instance: e.instance, ...(e.reason !== undefined ? { reason: e.reason } : {}) }, message),
      PluginCallFailed: (e) => {
        const { failure: fields, job } = Render.pluginCallFailedJson(e)
        return envelope(fields, message, { job })
      },
      UnclassifiedFailure: (e) => {
        const { failure: fields, job } = Render.unclassifiedJson(e)
        return envelope(fields, message, { job })
      },
      InvalidJsonOption: (e) => envelope(Render.invalidJsonJson(e).failure, message),
      PluginNotFound: (e) => envelope(Render.pluginNotFoundJson(e).error, message),
      LockOutOfDate: (e) =>
        envelope(
          {
            _tag: e._tag,
            lock: e.lock,
            ...(e.missing === true ? { missing: true } : {}),
            ...(e.changes !== undefined ? { changes: e.changes } : {}),
          },
          message,
        ),
      ManifestsStale: (e) =>
        envelope({ _tag: e._tag, plugins: e.plugins, ...(e.differences !== undefined ? { differences: e.differences } : {}) }, message),
      UsageError: (e) => envelope({ _tag: e._tag, command: e.command }, message),
      ServeFailed: (e) => envelope({ _tag: e._tag }, message),
      ClusterJoinRefused: (e) => envelope({ _tag: e._tag, clusterDigest: e.clusterDigest, runnerDigest: e.runnerDigest, runners: e.runners }, message),
      JobsRequestFailed: (e) => envelope({ _tag: e._tag, reason: e.reason, ...(e.status !== undefined ? { status: e.status } : {}) }, message),
      JobUnsuccessful: (e) => envelope({ _tag: e._tag, job: e.job, status: e.status, ...(e.error !== undefined ? { failure: e.error } : {}) }, message),
      IntegrityMismatch: rejection(message),
      MissingManifest: rejection(message),
      SchemaViolation: rejection(message),
      UnlockedPlugin: rejection(message),
      MissingPluginDirectory: rejection(message),
      PluginImportError: rejection(message),
      SymlinkEscape: rejection(message),
      LockFileMalformed: rejection(message),
      LockFileMissing: rejection(message),
    }),
  )
}

const rejection = (message: string) => (r: Parameters<typeof Render.rejectionJson>[0]) => {
  const fields = Render.rejectionJson(r).rejection
  const error = tagFirst(fields, message)
  return { ok: false as const, error, rejection: error }
}

/** What a program sees when plinth itself fails unexpectedly (exit 1). */
export const unexpectedJson = (message: string): FailureEnvelope => ({ ok: false, error: { _tag: "UnexpectedError", message } })

/** Every `--json` object is printed on one line. */
export const stringify = (value: unknown): string => JSON.stringify(value)
