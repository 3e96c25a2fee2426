import { compareBytewise } from "./PluginPath.js"

/*
 * The evidence `plinth plugins report` keeps from one run, as plain JSON
 * values, and its one-page Markdown summary. Pure: the runtime gathers the
 * evidence, this module only shapes and renders it.
 */

/** The bundle's layout, relative to its folder. */
export const reportFiles = {
  json: "report.json",
  markdown: "REPORT.md",
  lockCopy: "PLUGINS.lock",
  manifests: "manifests",
} as const

/** Where a plugin's manifest is copied in the bundle. */
export const manifestCopyPath = (id: string) => `${reportFiles.manifests}/${id}.json`

/** A rejection as JSON: its tag and every field of its variant, and the sentence a person reads. */
export interface RejectionEvidence {
  readonly _tag: string
  readonly message: string
  readonly [field: string]: unknown
}

export interface PluginEvidence {
  /** The folder name (equal to the manifest's id when the manifest decoded). */
  readonly id: string
  readonly verified: boolean
  readonly version: string | null
  readonly description: string | null
  readonly digest: {
    /** What the lock pins; null when the lock does not name the plugin or cannot be read. */
    readonly expected: string | null
    /** What the files on disk hash to now; null when the folder is missing or cannot be walked. */
    readonly actual: string | null
  }
  readonly files: {
    /** Files the lock pins for this plugin. */
    readonly locked: number
    /** Files found in the folder; null when it is missing or cannot be walked. */
    readonly found: number | null
  }
  /** The manifest as decoded (actions with their input/output JSON Schemas, config, permissions), or null. */
  readonly manifest: Readonly<Record<string, unknown>> | null
  /** Where the bundle holds its `plugin.json`, byte for byte; null when it did not decode. */
  readonly manifestCopy: string | null
  readonly rejection: RejectionEvidence | null
}

export interface IsolationEvidence {
  /** The tier a worker gets when none is asked for. */
  readonly default: "os" | "permissions"
  readonly os: { readonly available: boolean; readonly reason: string | null }
  readonly permissions: {
    readonly available: true
    /** Whether workers are started with a parent-death signal (`setpriv --pdeathsig`). */
    readonly parentDeathSignal: boolean
  }
}

export interface EnvironmentEvidence {
  readonly plinth: string
  readonly node: string
  readonly os: { readonly platform: string; readonly release: string; readonly arch: string }
  readonly isolation: IsolationEvidence
}

export interface LockEvidence {
  /** The lock as given (`--lock`). */
  readonly path: string
  readonly readable: boolean
  /** Why it could not be used, when it could not. */
  readonly problem: string | null
  /** SHA-256 of the lock's bytes, when it was read. */
  readonly sha256: string | null
  readonly plugins: number
  /** Where the bundle holds the lock byte for byte; null when it could not be read. */
  readonly copy: string | null
}

interface ReportBody {
  readonly reportVersion: 1
  /** The only field that differs between two runs over the same files on the same machine. */
  readonly generatedAt: string
  readonly root: string
  readonly lock: LockEvidence
  readonly environment: EnvironmentEvidence
  readonly summary: { readonly plugins: number; readonly verified: number; readonly rejected: number }
  /** Sorted by id, bytewise: folders on disk and plugins the lock names without a folder. */
  readonly plugins: ReadonlyArray<PluginEvidence>
}

/** The report is its own JSON envelope: `ok` is true only when every plugin verified. */
export type VerificationReport =
  | (ReportBody & { readonly ok: true })
  | (ReportBody & {
      readonly ok: false
      readonly error: { readonly _tag: "PluginsRejected"; readonly message: string; readonly plugins: ReadonlyArray<string> }
    })

/** Assembles the report from its parts: the summary and the verdict follow from the plugins. */
export const makeVerificationReport = (body: Omit<ReportBody, "reportVersion" | "summary">): VerificationReport => {
  const plugins = [...body.plugins].sort((a, b) => compareBytewise(a.id, b.id))
  const rejected = plugins.filter((p) => !p.verified).map((p) => p.id)
  const summary = { plugins: plugins.length, verified: plugins.length - rejected.length, rejected: rejected.length }
  const base = { reportVersion: 1 as const, generatedAt: body.generatedAt, root: body.root, lock: body.lock, environment: body.environment, summary, plugins }
  return rejected.length === 0 && body.lock.readable
    ? { ok: true, ...base }
    : {
        ok: false,
        error: {
          _tag: "PluginsRejected",
          message:
            rejected.length === 0
              ? `the lock cannot be used: ${body.lock.problem ?? "unknown"}`
              : `${rejected.length} of ${plugins.length} plugins rejected: ${rejected.join(", ")}`,
          plugins: rejected,
        },
        ...base,
      }
}

// Markdown rendering. Everything a plugin or the disk supplies is untrusted text:
// control characters (line breaks included) are shown as escapes, so it never
// starts a line, and inline Markdown syntax is escaped, so it cannot forge a
// table cell, emphasis, a link or HTML in the summary.

const controls = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g
const showControl = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`

/** Untrusted text for a Markdown paragraph or table cell. */
export const markdownText = (text: string): string => text.replace(/[\\`*_[\]<>|~&]/g, "\\$&").replace(controls, showControl)

/** Untrusted text as inline code; falls back to escaped text when a backtick would end the span. */
export const markdownCode = (text: string): string => {
  const shown = text.replace(controls, showControl)
  return shown.includes("`") ? markdownText(text) : `\`${shown.replace(/\|/g, "\\|")}\``
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`

const verdict = (report: VerificationReport) =>
  report.ok
    ? `**Verdict: ${report.summary.plugins === 0 ? "no plugins found" : `all ${plural(report.summary.plugins, "plugin")} verified`}.**`
    : report.summary.rejected === 0
      ? `**Verdict: rejected: the lock cannot be used.**`
      : `**Verdict: ${report.summary.rejected} of ${plural(report.summary.plugins, "plugin")} rejected.**`

const isolationLine = (isolation: IsolationEvidence) => {
  const os = isolation.os.available ? "os (bubblewrap) available" : `os unavailable (${markdownText(isolation.os.reason ?? "unknown")})`
  const permissions = `permissions available${isolation.permissions.parentDeathSignal ? " with a parent-death signal" : ""}`
  return `Isolation: ${os}; ${permissions}; workers get **${isolation.default}** by default.`
}

const lockLine = (lock: LockEvidence) =>
  lock.readable
    ? `Lock: ${markdownCode(lock.path)}, ${plural(lock.plugins, "plugin")} pinned, sha256 ${markdownCode(lock.sha256 ?? "")}; copied as ${markdownCode(lock.copy ?? "")}.`
    : `Lock: ${markdownCode(lock.path)} cannot be used: ${markdownText(lock.problem ?? "unknown")}.`

const filesCell = (p: PluginEvidence) => `${p.files.found === null ? "–" : p.files.found} / ${p.files.locked}`

const pluginRow = (p: PluginEvidence) =>
  `| ${markdownText(p.id)} | ${p.version === null ? "–" : markdownText(p.version)} | ${p.verified ? "verified" : `**rejected** (${markdownText(p.rejection?._tag ?? "")})`} | ${filesCell(p)} | ${p.digest.actual === null ? "–" : markdownCode(p.digest.actual)} |`

const pathList = (label: string, value: unknown) =>
  Array.isArray(value) && value.length > 0 ? [`  - ${label}: ${value.map((v) => markdownCode(String(v))).join(", ")}`] : []

const rejectionItem = (p: PluginEvidence) => {
  const r = p.rejection!
  const firstLine = r.message.split("\n")[0] ?? ""
  return [
    `- **${markdownText(p.id)}**: ${markdownText(r._tag)}: ${markdownText(firstLine)}`,
    ...(p.digest.expected !== null || p.digest.actual !== null
      ? [`  - expected ${p.digest.expected === null ? "–" : markdownCode(p.digest.expected)}, actual ${p.digest.actual === null ? "–" : markdownCode(p.digest.actual)}`]
      : []),
    ...pathList("added", r["added"]),
    ...pathList("removed", r["removed"]),
    ...pathList("changed", r["changed"]),
    ...(typeof r["offendingPath"] === "string" ? [`  - offending path: ${markdownCode(r["offendingPath"])}`] : []),
    ...(typeof r["detail"] === "string" ? [`  - detail: ${markdownText(r["detail"].replace(/\s*\n\s*/g, " "))}`] : []),
  ]
}

const actionsOf = (p: PluginEvidence): ReadonlyArray<string> => {
  const actions = p.manifest?.["actions"]
  if (typeof actions !== "object" || actions === null) return []
  return Object.keys(actions)
    .sort(compareBytewise)
    .map((name) => {
      const declaration = (actions as Record<string, { readonly streaming?: unknown }>)[name]
      return `${markdownCode(name)}${declaration?.streaming === true ? " (stream)" : ""}`
    })
}

const actionLine = (p: PluginEvidence) => {
  const actions = actionsOf(p)
  const manifest = p.manifestCopy === null ? "" : ` (manifest: ${markdownCode(p.manifestCopy)})`
  return `- **${markdownText(p.id)}**${manifest}: ${actions.length === 0 ? "no declared actions" : actions.join(", ")}`
}

/** The one-page `REPORT.md`: verdict, environment, lock, one row per plugin, the rejections and the declared actions. */
export const renderReportMarkdown = (report: VerificationReport): string => {
  const env = report.environment
  const rejected = report.plugins.filter((p) => !p.verified && p.rejection !== null)
  const described = report.plugins.filter((p) => p.manifest !== null)
  return [
    "# Plinth verification report",
    "",
    verdict(report),
    "",
    `Generated ${markdownText(report.generatedAt)} by Plinth ${markdownText(env.plinth)} on Node ${markdownText(env.node)}, ${markdownText(env.os.platform)} ${markdownText(env.os.release)} (${markdownText(env.os.arch)}). No plugin code was run to make this report: manifests and the lock were read, and every file was hashed.`,
    "",
    `Plugin root: ${markdownCode(report.root)}. ${lockLine(report.lock)}`,
    "",
    isolationLine(env.isolation),
    "",
    "## Plugins",
    "",
    ...(report.plugins.length === 0
      ? ["No plugin folders were found."]
      : ["| plugin | version | status | files (found / locked) | digest on disk |", "| --- | --- | --- | --- | --- |", ...report.plugins.map(pluginRow)]),
    ...(rejected.length === 0 ? [] : ["", "## Rejections", "", ...rejected.flatMap(rejectionItem)]),
    ...(described.length === 0 ? [] : ["", "## Declared actions", "", ...described.map(actionLine)]),
    "",
    `The evidence in full is in ${markdownCode(reportFiles.json)}: per plugin the expected and actual digests, file counts, the decoded manifest with every action's input and output JSON Schema, and the rejection with all its fields.`,
    "",
  ].join("\n")
}
