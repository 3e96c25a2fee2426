import { Context, Effect, Layer } from "effect"
import { diffFileMaps, IntegrityMismatch, SchemaViolation, type LockEntry, type PluginManifest, type SymlinkEscape, type TreeEntry } from "@plinth/domain"
import { Hashing } from "../hashing/Hashing.js"
import { PluginFiles } from "./PluginFiles.js"

/** A plugin folder found on disk with a manifest that decoded. */
export interface DiscoveredPlugin {
  readonly id: string
  readonly dir: string
  readonly manifest: PluginManifest
}

/**
 * The strategy seam for deciding whether a plugin's bytes are the reviewed
 * ones. The default compares tree digests with the lock; a signature verifier
 * is another Layer of this Tag, with no edit to the loader.
 */
export class PluginVerifier extends Context.Tag("@plinth/runtime/PluginVerifier")<
  PluginVerifier,
  {
    readonly verify: (
      plugin: DiscoveredPlugin,
      locked: LockEntry,
    ) => Effect.Effect<void, IntegrityMismatch | SymlinkEscape | SchemaViolation>
  }
>() {}

/** Walks and hashes a plugin folder: its per-file hashes and tree digest. */
export const measureTree = (dir: string, plugin: string) =>
  Effect.gen(function* () {
    const files = yield* PluginFiles
    const hashing = yield* Hashing
    const walked = yield* files.walk(dir, plugin)
    const hashes = yield* hashing
      .hashFiles(walked.map((f) => f.absolutePath))
      .pipe(Effect.mapError((e) => new SchemaViolation({ plugin, detail: `'${e.path}' cannot be read (${e.detail})` })))
    const entries: Array<TreeEntry> = walked.map((f, i) => ({ path: f.path, sha256: hashes[i]! }))
    return { entries, digest: hashing.treeDigest(entries) }
  })

export const TreeDigestVerifierLive = Layer.effect(
  PluginVerifier,
  Effect.gen(function* () {
    const context = yield* Effect.context<PluginFiles | Hashing>()
    return PluginVerifier.of({
      verify: (plugin, locked) =>
        Effect.gen(function* () {
          const { entries, digest } = yield* measureTree(plugin.dir, plugin.id)
          if (digest === locked.digest) return
          const actualFiles = Object.fromEntries(entries.map((e) => [e.path, e.sha256]))
          const diff = diffFileMaps(locked.files, actualFiles)
          return yield* new IntegrityMismatch({ plugin: plugin.id, expected: locked.digest, actual: digest, ...diff })
        }).pipe(Effect.provide(context), Effect.withSpan("plinth.verify", { attributes: { plugin: plugin.id } })),
    })
  }),
)
