import { arch, platform, release } from "node:os"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import { Clock, Effect, Either, Schema } from "effect"
import {
  explainRejection,
  lockMismatch,
  makeVerificationReport,
  manifestCopyPath,
  MissingPluginDirectory,
  PluginManifest,
  PluginRejected,
  renderReportMarkdown,
  reportFiles,
  UnlockedPlugin,
  type EnvironmentEvidence,
  type LockFile,
  type PluginEvidence,
  type RejectionEvidence,
  type VerificationReport,
} from "@plinth/domain"
import { Hashing } from "../hashing/Hashing.js"
import { bubblewrapStatus, setprivProgram } from "../instance/Isolation.js"
import { namingLock } from "../loading/Loader.js"
import { readLockText } from "../loading/LockStore.js"
import { readManifestFile } from "../loading/Manifests.js"
import { discoverPluginFolders } from "../loading/PluginFiles.js"
import { measureTree } from "../loading/PluginVerifier.js"

/*
 * `plinth plugins report`: the evidence of one verification, gathered without
 * running plugin code (manifests and the lock are read, files are hashed; the
 * only process started is bubblewrap's own `node -e 0` probe), then written
 * as a folder a reviewer or auditor keeps. See ADRs/0023-report-bundle.md.
 */

export interface ReportOptions {
  readonly root: string
  readonly lock: string
  /** The Plinth version to record (the CLI passes its own). */
  readonly plinthVersion: string
}

/** The report and the bytes the bundle copies verbatim. */
export interface GatheredReport {
  readonly report: VerificationReport
  /** Every rejection found, in plugin order (empty when `report.ok`). */
  readonly rejections: ReadonlyArray<PluginRejected>
  /** The lock's text as read, when it could be read. */
  readonly lockText: string | undefined
  /** Each decoded manifest's `plugin.json` text, by plugin id. */
  readonly manifests: ReadonlyArray<{ readonly id: string; readonly text: string }>
}

const encodeRejection = Schema.encodeSync(PluginRejected)
const encodeManifest = Schema.encodeSync(PluginManifest)

const rejectionEvidence = (rejection: PluginRejected): RejectionEvidence => ({
  ...(encodeRejection(rejection) as { readonly _tag: string }),
  message: explainRejection(rejection),
})

/** The isolation tiers this host can give a worker, probed without running plugin code. */
export const isolationEvidence = Effect.sync((): EnvironmentEvidence["isolation"] => {
  const bubblewrap = bubblewrapStatus()
  return {
    default: bubblewrap.ok ? "os" : "permissions",
    os: { available: bubblewrap.ok, reason: bubblewrap.ok ? null : bubblewrap.reason },
    permissions: { available: true, parentDeathSignal: setprivProgram() !== undefined },
  }
})

/**
 * Gathers the evidence of one verification: every plugin folder under root
 * and every plugin the lock names, each verified on its own (a rejection does
 * not stop the others), with the environment. Fails only when the root
 * cannot be listed.
 */
export const gatherReport = (options: ReportOptions) =>
  Effect.gen(function* () {
    const path = yield* Path.Path
    const hashing = yield* Hashing
    const lockRead = yield* Effect.either(readLockText(options.lock, options.root))
    const lock = Either.isRight(lockRead) ? lockRead.right.lock : undefined
    const folders = yield* discoverPluginFolders(options.root)

    const rejections: Array<{ readonly id: string; readonly rejection: PluginRejected }> = []
    const manifests: Array<{ readonly id: string; readonly text: string }> = []
    const evidence: Array<PluginEvidence> = []

    for (const folder of folders) {
      const dir = path.join(options.root, folder)
      const manifest = yield* Effect.either(readManifestFile(dir, folder))
      // Hashed even when something else is wrong: the files found are evidence too.
      const measured = yield* Effect.either(measureTree(dir, folder))
      const locked = lock !== undefined && Object.hasOwn(lock.plugins, folder) ? lock.plugins[folder as keyof LockFile["plugins"]] : undefined
      // The order `verify` checks in: the lock, the manifest, lock membership, the files.
      const rejection: PluginRejected | undefined = Either.isLeft(lockRead)
        ? lockRead.left
        : Either.isLeft(manifest)
          ? manifest.left
          : locked === undefined
            ? new UnlockedPlugin({ plugin: folder, lock: options.lock })
            : Either.isLeft(measured)
              ? measured.left
              : namingLock(options.lock)(lockMismatch(folder, locked, measured.right))
      if (rejection !== undefined) rejections.push({ id: folder, rejection })
      if (Either.isRight(manifest)) manifests.push({ id: folder, text: manifest.right.text })
      evidence.push({
        id: folder,
        verified: rejection === undefined,
        version: Either.isRight(manifest) ? manifest.right.manifest.version : null,
        description: Either.isRight(manifest) ? manifest.right.manifest.description : null,
        digest: { expected: locked?.digest ?? null, actual: Either.isRight(measured) ? measured.right.digest : null },
        files: { locked: locked === undefined ? 0 : Object.keys(locked.files).length, found: Either.isRight(measured) ? measured.right.entries.length : null },
        manifest: Either.isRight(manifest) ? (encodeManifest(manifest.right.manifest) as Record<string, unknown>) : null,
        manifestCopy: Either.isRight(manifest) ? manifestCopyPath(folder) : null,
        rejection: rejection === undefined ? null : rejectionEvidence(rejection),
      })
    }

    const found = new Set(folders)
    for (const [id, locked] of Object.entries(lock?.plugins ?? {})) {
      if (found.has(id)) continue
      const rejection = new MissingPluginDirectory({ plugin: id, lock: options.lock })
      rejections.push({ id, rejection })
      evidence.push({
        id,
        verified: false,
        version: null,
        description: null,
        digest: { expected: locked.digest, actual: null },
        files: { locked: Object.keys(locked.files).length, found: null },
        manifest: null,
        manifestCopy: null,
        rejection: rejectionEvidence(rejection),
      })
    }

    const report = makeVerificationReport({
      generatedAt: new Date(yield* Clock.currentTimeMillis).toISOString(),
      root: options.root,
      lock: Either.isRight(lockRead)
        ? {
            path: options.lock,
            readable: true,
            problem: null,
            sha256: hashing.sha256Hex(lockRead.right.text),
            plugins: Object.keys(lockRead.right.lock.plugins).length,
            copy: reportFiles.lockCopy,
          }
        : { path: options.lock, readable: false, problem: lockRead.left._tag === "LockFileMissing" ? explainRejection(lockRead.left) : lockRead.left.detail, sha256: null, plugins: 0, copy: null },
      environment: {
        plinth: options.plinthVersion,
        node: process.version,
        os: { platform: platform(), release: release(), arch: arch() },
        isolation: yield* isolationEvidence,
      },
      plugins: evidence,
    })
    const order = new Map(report.plugins.map((p, i) => [p.id, i]))
    const gathered: GatheredReport = {
      report,
      rejections: [
        ...rejections.sort((a, b) => order.get(a.id)! - order.get(b.id)!).map((r) => r.rejection),
        // An unusable lock rejects the run even when there is no plugin for it to reject.
        ...(Either.isLeft(lockRead) && rejections.length === 0 ? [lockRead.left] : []),
      ],
      lockText: Either.isRight(lockRead) ? lockRead.right.text : undefined,
      manifests,
    }
    return gathered
  }).pipe(Effect.withSpan("plinth.gatherReport"))

/** `--out` names something a report may not be written to. */
export class ReportOutRefused extends Schema.TaggedError<ReportOutRefused>()("ReportOutRefused", {
  out: Schema.String,
  reason: Schema.String,
}) {
  override get message() {
    return `cannot write the report to '${this.out}': ${this.reason}`
  }
}

/** Writing the bundle failed (permissions, a full disk). */
export class ReportWriteFailed extends Schema.TaggedError<ReportWriteFailed>()("ReportWriteFailed", {
  path: Schema.String,
  detail: Schema.String,
}) {}

/** What a report bundle holds at its top level; `force` replaces a folder holding only these. */
const BUNDLE_ENTRIES: ReadonlySet<string> = new Set(Object.values(reportFiles))

/** The JSON text of `report.json`, which is also what `--json` prints. */
export const reportJsonText = (report: VerificationReport) => JSON.stringify(report, null, 2)

/**
 * Writes the bundle to `out`: `report.json`, `REPORT.md`, `PLUGINS.lock` (the
 * lock byte for byte) and `manifests/<id>.json` (each `plugin.json` byte for
 * byte). It is built in a temporary folder beside `out` and renamed into
 * place, so `out` never holds half a report. `out` must be missing or empty;
 * with `force`, a folder holding only a previous report's entries is
 * replaced. Anything else is refused: `force` never deletes other files.
 */
export const writeReportBundle = (out: string, gathered: GatheredReport, options: { readonly force?: boolean } = {}) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const failed = (at: string) => (e: { readonly message: string }) => new ReportWriteFailed({ path: at, detail: e.message })

    // A folder directly under the plugin root would be taken for a plugin by the next verify (hidden ones are skipped).
    const underRoot = path.relative(path.resolve(gathered.report.root), path.resolve(out))
    if (underRoot === "" || (!underRoot.startsWith("..") && !path.isAbsolute(underRoot) && !underRoot.startsWith("."))) {
      return yield* new ReportOutRefused({ out, reason: `it is inside the plugin root '${gathered.report.root}', where it would be taken for a plugin; write it elsewhere` })
    }

    const existing = yield* fs.stat(out).pipe(Effect.option)
    let replace: ReadonlyArray<string> = []
    if (existing._tag === "Some") {
      if (existing.value.type !== "Directory") return yield* new ReportOutRefused({ out, reason: "it exists and is not a folder" })
      const entries = yield* fs.readDirectory(out).pipe(Effect.mapError(failed(out)))
      if (entries.length > 0) {
        const foreign = entries.filter((entry) => !BUNDLE_ENTRIES.has(entry)).sort()
        if (options.force !== true) {
          return yield* new ReportOutRefused({ out, reason: "the folder is not empty; choose a new folder, or pass --force to replace the report in it" })
        }
        if (foreign.length > 0) {
          return yield* new ReportOutRefused({ out, reason: `it holds more than a previous report (${foreign.slice(0, 3).join(", ")}${foreign.length > 3 ? ", …" : ""}); --force replaces only a report` })
        }
        replace = entries
      }
    }

    const parent = path.dirname(path.resolve(out))
    yield* fs.makeDirectory(parent, { recursive: true }).pipe(Effect.mapError(failed(parent)))
    const staging = yield* fs.makeTempDirectory({ directory: parent, prefix: `.${path.basename(path.resolve(out))}.report-` }).pipe(Effect.mapError(failed(parent)))
    // mkdtemp makes the folder private; a report is meant to be read by others.
    yield* fs.chmod(staging, 0o755).pipe(Effect.mapError(failed(parent)))
    const write = (relative: string, text: string) =>
      fs.writeFileString(path.join(staging, relative), text).pipe(Effect.mapError(failed(path.join(out, relative))))

    yield* Effect.gen(function* () {
      yield* write(reportFiles.json, `${reportJsonText(gathered.report)}\n`)
      yield* write(reportFiles.markdown, renderReportMarkdown(gathered.report))
      if (gathered.lockText !== undefined) yield* write(reportFiles.lockCopy, gathered.lockText)
      if (gathered.manifests.length > 0) {
        yield* fs.makeDirectory(path.join(staging, reportFiles.manifests)).pipe(Effect.mapError(failed(path.join(out, reportFiles.manifests))))
        for (const manifest of gathered.manifests) yield* write(manifestCopyPath(manifest.id), manifest.text)
      }
      for (const entry of replace) yield* fs.remove(path.join(out, entry), { recursive: true }).pipe(Effect.mapError(failed(path.join(out, entry))))
      // rename(2) replaces an empty folder in one step.
      yield* fs.rename(staging, out).pipe(Effect.mapError(failed(out)))
    }).pipe(Effect.onError(() => fs.remove(staging, { recursive: true }).pipe(Effect.ignore)))
  })
