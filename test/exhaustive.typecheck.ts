// Compiled by `npm test` (tsc -b test): a consumer's exhaustive match over the
// rejection union must fail to compile when it forgets a variant.
import { Match } from "effect"
import type { PluginRejected } from "@plinth/domain"

export const complete = Match.type<PluginRejected>().pipe(
  Match.tagsExhaustive({
    IntegrityMismatch: () => "integrity",
    MissingManifest: () => "manifest",
    SchemaViolation: () => "schema",
    UnlockedPlugin: () => "unlocked",
    MissingPluginDirectory: () => "directory",
    PluginImportError: () => "import",
    SymlinkEscape: () => "symlink",
    LockFileMalformed: () => "lock",
    LockFileMissing: () => "no lock",
  }),
)

export const forgetsOne = Match.type<PluginRejected>().pipe(
  // @ts-expect-error LockFileMalformed is not handled, so this must not compile.
  Match.tagsExhaustive({
    IntegrityMismatch: () => "integrity",
    MissingManifest: () => "manifest",
    SchemaViolation: () => "schema",
    UnlockedPlugin: () => "unlocked",
    MissingPluginDirectory: () => "directory",
    PluginImportError: () => "import",
    SymlinkEscape: () => "symlink",
  }),
)

export const switchForgetsOne = (r: PluginRejected): number => {
  switch (r._tag) {
    case "IntegrityMismatch":
    case "MissingManifest":
    case "SchemaViolation":
    case "UnlockedPlugin":
    case "MissingPluginDirectory":
    case "PluginImportError":
    case "SymlinkEscape":
      return 4
    default: {
      // @ts-expect-error LockFileMalformed reaches here, so it is not `never`.
      const unreachable: never = r
      return unreachable
    }
  }
}
