import { Option, Schema } from "effect"
import {
  explainRejection,
  PluginManifest,
  PluginRejected,
  type Digest,
  type LockChanges,
  type PluginRejected as Rejection,
} from "@plinth/domain"
import type { LockOutcome, LockWriteFailed, PluginSummary } from "@plinth/runtime"
import { plainPalette, type Palette } from "./Colour.js"

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
      : `${lock} is out of date: ${changeCounts(outcome.changes)}`
  return [headline, ...changeLines(outcome.changes, palette)].join("\n")
}

export const lockOutcomeJson = (outcome: LockOutcome) => ({
  ok: outcome.upToDate || outcome.written,
  upToDate: outcome.upToDate,
  written: outcome.written,
  changes: { added: outcome.changes.added, removed: outcome.changes.removed, changed: outcome.changes.changed },
})

export const renderLockOutOfDate = (lockPath: string, palette: Palette = plainPalette): string =>
  `${palette.bad("out of date")}: ${oneLine(lockPath)} does not pin the plugins on disk; review them, then run 'plinth plugins lock'`

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
  return lines.join("\n")
}
