import { Match, Option, Schema } from "effect"
import {
  explainRejection,
  lockCommand,
  JobError,
  PluginFailure,
  PluginManifest,
  PluginRejected,
  type Digest,
  type LockChanges,
  type PluginDeclaration,
  type PluginRejected as Rejection,
} from "@plinth/domain"
import type { CallRecord, DescribeOutcome, LockOutcome, LockWriteFailed, PluginNotFound, PluginSummary, TraceUnavailable } from "@plinth/runtime"
import { plainPalette, type Palette } from "./Colour.js"
import type { InvalidJsonOption, LockOutOfDate, ManifestWriteFailed, PluginCallFailed, UnclassifiedFailure } from "./Failures.js"

/*
 * Pure renderers: human text (for a terminal, with a palette) and JSON values
 * (for `--json`, printed as exactly one object). Text from plugin folders is
 * untrusted, so control characters are shown escaped, never sent to the terminal.
 */

/** Escapes control characters (ESC, CR, …) so plugin-supplied text cannot drive the terminal; keeps newlines and tabs. */
export const printable = (text: string): string =>
  text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)

/** `printable`, on one line. */
export const oneLine = (text: string): string => printable(text.replace(/\s*[\r\n]+\s*/g, " "))

const padColumns = (rows: ReadonlyArray<ReadonlyArray<string>>): Array<string> => {
  const widths: Array<number> = []
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)))
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  "))
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`

// ---------------------------------------------------------------- verify

/** One verified plugin, as `verify` reports it. */
export interface VerifiedPlugin {
  readonly id: string
  readonly version: string
  readonly digest: Digest
}

export const renderVerified = (plugins: ReadonlyArray<VerifiedPlugin>, lockPath: string, palette: Palette = plainPalette): string =>
  [
    ...padColumns(plugins.map((p) => [oneLine(p.id), oneLine(p.version), p.digest])).map((line) => `${palette.ok("ok")}  ${line}`),
    `${plural(plugins.length, "plugin")} verified against ${oneLine(lockPath)}`,
  ].join("\n")

export const verifiedJson = (plugins: ReadonlyArray<VerifiedPlugin>) => ({
  ok: true as const,
  plugins: plugins.map((p) => ({ id: p.id, version: p.version, digest: p.digest })),
})

// ---------------------------------------------------------------- failures

/** Which rule refused the load, and why, with the files involved. */
export const renderRejection = (rejection: Rejection, palette: Palette = plainPalette): string =>
  `${palette.bad("rejected")} [${rejection._tag}]: ${printable(explainRejection(rejection))}`

const encodeRejection = Schema.encodeSync(PluginRejected)

/** The rejection with every field of its variant; `_tag` names the variant. */
export const rejectionJson = (rejection: Rejection) => ({ ok: false as const, rejection: encodeRejection(rejection) })

export const renderLockWriteFailed = (error: LockWriteFailed, palette: Palette = plainPalette): string =>
  `${palette.bad("error")}: cannot write ${printable(error.path)}: ${printable(error.detail)}`

export const lockWriteFailedJson = (error: LockWriteFailed) => ({
  ok: false as const,
  error: { _tag: error._tag, path: error.path, detail: error.detail },
})

// ---------------------------------------------------------------- lock

const changeLines = (changes: LockChanges, palette: Palette) => [
  ...changes.added.map((id) => `  ${palette.ok("+")} ${id}  (added)`),
  ...changes.removed.map((id) => `  ${palette.bad("-")} ${id}  (removed)`),
  ...changes.changed.map((id) => `  ${palette.strong("~")} ${id}  (changed)`),
]

const changeCounts = (changes: LockChanges) =>
  `${changes.added.length} added, ${changes.removed.length} removed, ${changes.changed.length} changed`

export const renderLockOutcome = (outcome: LockOutcome, lockPath: string, palette: Palette = plainPalette): string => {
  const lock = oneLine(lockPath)
  const headline = outcome.upToDate
    ? `${lock} is up to date`
    : outcome.written
      ? `${lock} written: ${changeCounts(outcome.changes)}`
      : !outcome.lockFound
        ? `no lock yet at ${lock}: ${plural(outcome.changes.added.length, "plugin")} to pin`
        : `${lock} is out of date: ${changeCounts(outcome.changes)}`
  return [headline, ...changeLines(outcome.changes, palette)].join("\n")
}

export const lockOutcomeJson = (outcome: LockOutcome) => ({
  ok: outcome.upToDate || outcome.written,
  lockFound: outcome.lockFound,
  upToDate: outcome.upToDate,
  written: outcome.written,
  changes: { added: outcome.changes.added, removed: outcome.changes.removed, changed: outcome.changes.changed },
})

export const renderLockOutOfDate = (error: LockOutOfDate, palette: Palette = plainPalette): string =>
  error.missing === true
    ? `${palette.bad("no lock yet")}: there is no lock file at ${oneLine(error.lock)}; review the plugins, then create it with: ${oneLine(lockCommand(error.root, error.lock))}`
    : `${palette.bad("out of date")}: ${oneLine(error.lock)} does not pin the plugins on disk; review them, then run: ${oneLine(lockCommand(error.root, error.lock))}`

// ---------------------------------------------------------------- list / show

const lockStatus = (summary: PluginSummary) =>
  Option.match(summary.lockedDigest, {
    onNone: () => ({ locked: false as const }),
    onSome: (digest) => ({ locked: true as const, digest, files: summary.lockedFiles }),
  })

export const renderPluginList = (plugins: ReadonlyArray<PluginSummary>, palette: Palette = plainPalette): string => {
  if (plugins.length === 0) return "no plugins"
  const rows = plugins.map((p) => [
    oneLine(p.id),
    oneLine(p.manifest.version),
    Option.isSome(p.lockedDigest) ? "locked" : "unlocked",
    oneLine(p.manifest.description),
  ])
  return padColumns(rows)
    .map((line, i) => (Option.isSome(plugins[i]!.lockedDigest) ? line : palette.bad(line)))
    .join("\n")
}

const encodeManifest = Schema.encodeSync(PluginManifest)

const summaryJson = (summary: PluginSummary) => ({
  id: summary.id,
  dir: summary.dir,
  manifest: encodeManifest(summary.manifest),
  lock: lockStatus(summary),
})

export const pluginListJson = (plugins: ReadonlyArray<PluginSummary>) => ({ ok: true as const, plugins: plugins.map(summaryJson) })

export const pluginDetailJson = (summary: PluginSummary) => ({ ok: true as const, plugin: summaryJson(summary) })

const jsonBlock = (value: unknown, indent: string) =>
  printable(JSON.stringify(value, null, 2))
    .split("\n")
    .map((line) => indent + line)
    .join("\n")

export const renderPluginDetail = (summary: PluginSummary, palette: Palette = plainPalette): string => {
  const m = summary.manifest
  const status = lockStatus(summary)
  const lines = [
    `${palette.strong(oneLine(m.id))} ${oneLine(m.version)}`,
    `  ${oneLine(m.description)}`,
    `  entry:   ${oneLine(m.entry)}`,
    `  folder:  ${oneLine(summary.dir)}`,
    status.locked
      ? `  lock:    locked ${status.digest} (${plural(status.files, "file")}); 'plinth plugins verify' checks the files`
      : `  lock:    ${palette.bad("not locked")}; review the plugin, then run 'plinth plugins lock'`,
  ]
  const actions = Object.entries(m.actions ?? {})
  lines.push(actions.length === 0 ? "actions: none declared" : "actions:")
  for (const [name, action] of actions) {
    lines.push(`  ${palette.strong(oneLine(name))}${action.streaming === true ? " (streaming)" : ""}: ${oneLine(action.description)}`)
    lines.push("    input:", jsonBlock(action.input, "      "))
    lines.push("    output:", jsonBlock(action.output, "      "))
  }
  if (m.config !== undefined) lines.push("config:", jsonBlock(m.config, "  "))
  if (m.permissions !== undefined) lines.push("permissions:", jsonBlock(m.permissions, "  "))
  if (m.resources !== undefined) lines.push("resources:", jsonBlock(m.resources, "  "))
  return lines.join("\n")
}

// ---------------------------------------------------------------- invoke

/** What a person sees of an action's result: the JSON value, indented, escaped. */
export const renderValue = (value: unknown): string => printable(JSON.stringify(value, null, 2) ?? "null")

/** One item of a streaming action, on one line. */
export const renderItem = (item: unknown): string => oneLine(JSON.stringify(item) ?? "null")

/** `invoke --json` writes JSON Lines: each item of a stream as `{"item": …}`, then the outcome. */
export const itemJsonLine = (item: unknown): string => JSON.stringify({ item })

export type InvocationOutcome =
  | { readonly kind: "value"; readonly value: unknown }
  | { readonly kind: "stream"; readonly items: number }

export const invocationJson = (plugin: string, action: string, outcome: InvocationOutcome) =>
  outcome.kind === "value"
    ? { ok: true as const, plugin, action, result: outcome.value }
    : { ok: true as const, plugin, action, items: outcome.items }

/** The summary line on stderr after a successful call. */
export const renderInvocationDone = (
  plugin: string,
  action: string,
  outcome: InvocationOutcome,
  durationMs: number | undefined,
  palette: Palette = plainPalette,
): string =>
  [
    `${palette.ok("ok")}: ${oneLine(plugin)}.${oneLine(action)}`,
    outcome.kind === "stream" ? `: ${plural(outcome.items, "item")}` : "",
    durationMs !== undefined ? ` in ${durationMs} ms` : "",
  ].join("")

/**
 * Turns progress reports into lines for stderr, at most one per whole
 * percent, so that a long stream does not drown the terminal.
 */
export const progressLines = () => {
  let last = -1
  return (report: { readonly fraction: number; readonly message?: string | undefined }): string | undefined => {
    const percent = Math.max(0, Math.min(100, Math.floor(report.fraction * 100)))
    if (percent === last) return undefined
    last = percent
    return `progress ${String(percent).padStart(3)}%${report.message !== undefined && report.message !== "" ? `  ${oneLine(report.message)}` : ""}`
  }
}

// ---------------------------------------------------------------- plugin failures

/** The headline of a failure of the taxonomy; the runtime's own messages are used where they say enough. */
const headline = (failure: PluginFailure, job: JobError): string =>
  Match.value(failure).pipe(
  Match.tagsExhaustive({
    ActionNotFound: (e) => `'${e.plugin === "" ? job.plugin : e.plugin}' has no action '${e.action}'`,
    ProtocolError: (e) => `the worker broke the protocol: ${e.detail}`,
    PluginInputError: (e) => e.message,
    PluginTransientError: (e) => e.message,
    PluginResourceError: (e) => e.message,
    PluginFatalError: (e) => e.message,
    InvokeTimeout: (e) => `timed out: ${e.message}`,
    WorkerKilled: (e) => e.message,
    WorkerOutOfMemory: (e) => e.message,
    AdmissionRefused: (e) => e.message,
    AdmissionTimeout: (e) => e.message,
    WorkerExited: (e) => e.message,
    WorkerStartFailed: (e) => e.message,
    InstanceFailed: (e) => e.message,
    SandboxDenied: (e) => e.message,
    DeclarationDrift: (e) => e.message,
    OutputRejected: (e) => e.message,
    DefinitionInvalid: (e) => e.message,
    MissingSecret: (e) => e.message,
  }),
  )

/** The end of a worker's stderr, indented under its label; nothing when it wrote none. */
const stderrBlock = (tail: string | undefined): Array<string> =>
  tail === undefined || tail.trim() === "" ? [] : [`worker stderr:\n${tail.trimEnd().split("\n").map((line) => `    ${line}`).join("\n")}`]

/** Structured fields of a failure, as `label: value` lines. */
const details = (failure: PluginFailure): Array<string> =>
  Match.value(failure).pipe(
    Match.tagsExhaustive({
      PluginInputError: (e) => (e.fieldsInvalid !== undefined ? [`invalid fields: ${e.fieldsInvalid.join(", ")}`] : []),
      PluginTransientError: (e) => (e.retryAfterSeconds !== undefined ? [`retry after: ${e.retryAfterSeconds} s`] : []),
      PluginResourceError: (e) =>
        e.shortfall !== undefined ? [`shortfall: ${e.shortfall.resource} needed ${e.shortfall.needed}, available ${e.shortfall.available}`] : [],
      WorkerKilled: (e) => [`worker: exit code ${e.exitCode}, signal ${e.signal}`],
      WorkerOutOfMemory: (e) => [`worker: exit code ${e.exitCode}, signal ${e.signal}`],
      WorkerExited: (e) => [`worker: exit code ${e.exitCode}, signal ${e.signal}`, ...stderrBlock(e.stderrTail)],
      WorkerStartFailed: (e) => [
        ...(e.exitCode !== undefined || e.signal !== undefined ? [`worker: exit code ${e.exitCode ?? null}, signal ${e.signal ?? null}`] : []),
        ...stderrBlock(e.stderrTail),
      ],
      DefinitionInvalid: (e) => [`hint: fix the plugin's definePlugin({…}) as the rule says, then 'plinth plugins describe ${e.plugin} --write'`],
      InvokeTimeout: () => ["hint: retry, or allow longer with --timeout"],
      DeclarationDrift: (e) => [`hint: run 'plinth plugins describe ${e.plugin} --write', review plugin.json, then 'plinth plugins lock'`],
      InstanceFailed: () => [],
      AdmissionRefused: () => [],
      AdmissionTimeout: () => [],
      SandboxDenied: () => ["hint: the manifest's permissions do not grant this"],
      ActionNotFound: () => [],
      PluginFatalError: () => [],
      ProtocolError: () => [],
      OutputRejected: () => ["hint: the plugin's code does not keep its reviewed manifest; report it to its author"],
      MissingSecret: (e) => [`hint: set each with 'plinth secrets set ${e.plugin} ${e.names[0] ?? "NAME"}' (the value is read from stdin), using the same --data-dir`],
    }),
  )

const indentRest = (text: string) => text.split("\n").join("\n  ")

const categoryLine = (job: JobError, palette: Palette) =>
  `category: ${palette.strong(job.category)}, ${job.retriable ? "retriable" : "not retriable"}`

/** A failed plugin operation for people: what happened, its category, whether to retry, and its fields. */
export const renderPluginCallFailed = (error: PluginCallFailed, palette: Palette = plainPalette): string =>
  [
    `${palette.bad("failed")} [${error.failure._tag}]: ${indentRest(printable(headline(error.failure, error.job)))}`,
    `  ${categoryLine(error.job, palette)}`,
    ...details(error.failure).map((line) => `  ${printable(line)}`),
  ].join("\n")

export const renderUnclassified = (error: UnclassifiedFailure, palette: Palette = plainPalette): string =>
  [`${palette.bad("failed")} [${error.job.tag}]: ${indentRest(printable(error.job.message))}`, `  ${categoryLine(error.job, palette)}`].join("\n")

const encodeFailure = Schema.encodeSync(PluginFailure)
const encodeJob = Schema.encodeSync(JobError)

/** `{"ok": false, "failure": {…the error, with _tag…}, "job": {…its JobError summary…}}`. */
export const pluginCallFailedJson = (error: PluginCallFailed) => ({
  ok: false as const,
  failure: encodeFailure(error.failure),
  job: encodeJob(error.job),
})

export const unclassifiedJson = (error: UnclassifiedFailure) => ({
  ok: false as const,
  failure: { _tag: error.job.tag, message: error.job.message },
  job: encodeJob(error.job),
})

export const renderInvalidJson = (error: InvalidJsonOption, palette: Palette = plainPalette): string =>
  `${palette.bad("invalid input")}: ${printable(error.message)}\n  category: input, not retriable; nothing was started`

export const invalidJsonJson = (error: InvalidJsonOption) => ({
  ok: false as const,
  failure: { _tag: error._tag, option: error.option, detail: error.detail },
})

export const renderPluginNotFound = (error: PluginNotFound, palette: Palette = plainPalette): string =>
  `${palette.bad("usage error")}: ${oneLine(error.message)}`

export const pluginNotFoundJson = (error: PluginNotFound) => ({
  ok: false as const,
  error: { _tag: error._tag, plugin: error.plugin, known: error.known },
})

export const renderManifestWriteFailed = (error: ManifestWriteFailed, palette: Palette = plainPalette): string =>
  `${palette.bad("error")}: cannot write plugin.json of '${oneLine(error.plugin)}': ${printable(error.detail)}`

export const manifestWriteFailedJson = (error: ManifestWriteFailed) => ({
  ok: false as const,
  error: { _tag: error._tag, plugin: error.plugin, detail: error.detail },
})

// ---------------------------------------------------------------- describe

const renderActions = (actions: PluginDeclaration["actions"], palette: Palette): Array<string> => {
  const entries = Object.entries(actions)
  const lines = [entries.length === 0 ? "actions: none declared" : "actions:"]
  for (const [name, action] of entries) {
    lines.push(`  ${palette.strong(oneLine(name))}${action.streaming === true ? " (streaming)" : ""}: ${oneLine(action.description)}`)
    lines.push("    input:", jsonBlock(action.input, "      "))
    lines.push("    output:", jsonBlock(action.output, "      "))
  }
  return lines
}

/** The live declaration of a plugin and what became of plugin.json. */
export const renderDescribeOutcome = (id: string, outcome: DescribeOutcome, palette: Palette = plainPalette): string => {
  const plugin = oneLine(id)
  const status = outcome.written
    ? `${palette.strong("wrote")} this declaration to plugin.json of '${plugin}': review the change, then run 'plinth plugins lock'`
    : outcome.upToDate
      ? `plugin.json of '${plugin}' already carries this declaration`
      : `${palette.bad("plugin.json differs")} from this declaration: run 'plinth plugins describe ${plugin} --write', review, then 'plinth plugins lock'`
  return [
    `${palette.strong(plugin)}: live declaration (from its code, loaded in a sandboxed worker)`,
    ...renderActions(outcome.declaration.actions, palette),
    "config:",
    jsonBlock(outcome.declaration.config, "  "),
    status,
  ].join("\n")
}

export const describeOutcomeJson = (id: string, outcome: DescribeOutcome) => ({
  ok: true as const,
  plugin: id,
  upToDate: outcome.upToDate,
  written: outcome.written,
  declaration: { actions: outcome.declaration.actions, config: outcome.declaration.config },
})

// ---------------------------------------------------------------- trace

/** What a trace consists of: the recorded calls, oldest first, and how many lines could not be read. */
export interface TraceView {
  readonly file: string
  readonly calls: ReadonlyArray<CallRecord>
  readonly skipped: number
}

const outcomeDetail = (call: CallRecord) =>
  [
    call.items !== undefined ? plural(call.items, "item") : undefined,
    call.outcome === "failed" ? `${call.category ?? "fatal"}: ${call.message ?? ""}` : undefined,
  ]
    .filter((part) => part !== undefined)
    .join("; ")

export const renderTrace = (view: TraceView, palette: Palette = plainPalette): string => {
  const skipped = view.skipped > 0 ? [`(${plural(view.skipped, "unreadable line")} skipped)`] : []
  if (view.calls.length === 0) return [`no calls recorded in ${oneLine(view.file)}`, ...skipped].join("\n")
  const rows = view.calls.map((call) => [
    oneLine(call.at),
    oneLine(call.plugin),
    oneLine(call.instance),
    oneLine(call.action),
    `${call.durationMs} ms`,
    call.outcome,
    oneLine(outcomeDetail(call)),
  ])
  const lines = padColumns([["time", "plugin", "instance", "action", "duration", "outcome", "detail"], ...rows]).map((line) => line.trimEnd())
  return [
    palette.dim(lines[0]!),
    ...lines.slice(1).map((line, i) => (view.calls[i]!.outcome === "ok" ? line : palette.bad(line))),
    `${plural(view.calls.length, "call")} from ${oneLine(view.file)}, oldest first`,
    ...skipped,
  ].join("\n")
}

export const traceJson = (view: TraceView) => ({ ok: true as const, file: view.file, calls: view.calls, skipped: view.skipped })

export const renderTraceUnavailable = (error: TraceUnavailable, palette: Palette = plainPalette): string =>
  `${palette.bad("error")}: cannot use the trace file ${oneLine(error.path)}: ${printable(error.detail)}`

export const traceUnavailableJson = (error: TraceUnavailable) => ({
  ok: false as const,
  error: { _tag: error._tag, path: error.path, detail: error.detail },
})
