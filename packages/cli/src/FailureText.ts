import { Match } from "effect"
import { plainPalette, type Palette } from "./Colour.js"
import type { HandlerFailure } from "./Failures.js"
import { renderManifestsStale } from "./DriftReport.js"
import * as Render from "./Render.js"

/** How to get help for a command. */
export const helpHint = (command: string) => `run '${command} --help' for usage`

/** The text a person sees on stderr for a failure. */
export const renderFailure = (failure: HandlerFailure, palette: Palette = plainPalette): string =>
  Match.value(failure).pipe(
    Match.tagsExhaustive({
      LockWriteFailed: (e) => Render.renderLockWriteFailed(e, palette),
      ReportWriteFailed: (e) => `${palette.bad("error")}: cannot write the report: ${Render.printable(e.path)}: ${Render.printable(e.detail)}`,
      ManifestWriteFailed: (e) => Render.renderManifestWriteFailed(e, palette),
      TraceUnavailable: (e) => Render.renderTraceUnavailable(e, palette),
      SecretStoreUnavailable: (e) => `${palette.bad("error")}: ${Render.printable(e.message)}`,
      StoreUnavailable: (e) => `${palette.bad("error")}: ${Render.oneLine(e.message)}`,
      StoreSchemaMismatch: (e) => `${palette.bad("error")}: ${Render.oneLine(e.message)}`,
      ConfigInvalid: (e) => `${palette.bad("refused")} [ConfigInvalid]: ${Render.oneLine(e.message)}`,
      PluginDisabled: (e) => `${palette.bad("refused")} [PluginDisabled]: ${Render.oneLine(e.message)}`,
      PluginCallFailed: (e) => Render.renderPluginCallFailed(e, palette),
      UnclassifiedFailure: (e) => Render.renderUnclassified(e, palette),
      InvalidJsonOption: (e) => Render.renderInvalidJson(e, palette),
      PluginNotFound: (e) => Render.renderPluginNotFound(e, palette),
      LockOutOfDate: (e) => Render.renderLockOutOfDate(e, palette),
      ManifestsStale: (e) => renderManifestsStale(e.plugins, palette),
      UsageError: (e) => `${palette.bad("usage error")}: ${e.message}\n${helpHint(e.command)}`,
      ServeFailed: (e) => `${palette.bad("error")}: ${Render.oneLine(e.message)}`,
      ClusterJoinRefused: (e) => `${palette.bad("refused")}: ${Render.oneLine(e.message)}`,
      JobsRequestFailed: (e) => `${palette.bad("error")}: ${Render.oneLine(e.detail)}`,
      JobUnsuccessful: (e) => `${palette.bad(e.status)}: ${Render.oneLine(e.message)}`,
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
