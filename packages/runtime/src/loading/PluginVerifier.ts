import { Context, Effect, Layer } from "effect"
import { lockMismatch, SchemaViolation, type IntegrityMismatch, type LockEntry, type PluginManifest, type SymlinkEscape } from "@plinth/domain"
import { Hashing, type TreeFile } from "../hashing/Hashing.js"
import { PluginFiles } from "./PluginFiles.js"

/** A plugin folder found on disk with a manifest that decoded. */
export interface DiscoveredPlugin {
  readonly id: string
  readonly dir: string
  readonly manifest: PluginManifest
}

/** One file of a plugin held in memory: its `/`-separated path in the plugin folder and its bytes. */
export interface InMemoryFile {
  readonly path: string
  readonly bytes: Uint8Array
}

/**
 * The strategy seam for deciding whether a plugin's bytes are the reviewed
 * ones. Every check goes through it: at load (the folder on disk) and at
 * instance start (the very bytes a worker or loader will run, already in
 * memory). The default compares tree digests with the lock; a signature
 * verifier is another Layer of this Tag, with no edit to the loader or to
 * instances.
 */
export class PluginVerifier extends Context.Tag("@plinth/runtime/PluginVerifier")<
  PluginVerifier,
  {
    /** Checks the plugin's folder on disk against its lock entry. */
    readonly verify: (
      plugin: DiscoveredPlugin,
      locked: LockEntry,
    ) => Effect.Effect<void, IntegrityMismatch | SymlinkEscape | SchemaViolation>
    /**
     * Checks a plugin's files read into memory (every file of its folder, as
     * `readVerifiedFiles` hands them to a worker or loader) against its lock entry.
     */
    readonly verifyFiles: (
      plugin: { readonly id: string; readonly dir: string },
      files: ReadonlyArray<InMemoryFile>,
      locked: LockEntry,
    ) => Effect.Effect<void, IntegrityMismatch | SchemaViolation>
  }
>() {}

const unreadable = (plugin: string) => (e: { readonly path: string; readonly detail: string }) =>
  new SchemaViolation({ plugin, detail: `'${e.path}' cannot be read (${e.detail})` })

/** Hashes a tree (files on disk or in memory) by the one digest spec; an unreadable file names the plugin. */
export const hashPluginTree = (plugin: string, files: ReadonlyArray<TreeFile>) =>
  Effect.flatMap(Hashing, (hashing) => hashing.hashTree(files).pipe(Effect.mapError(unreadable(plugin))))

/** Walks and hashes a plugin folder: its per-file hashes and tree digest. */
export const measureTree = (dir: string, plugin: string) =>
  Effect.gen(function* () {
    const files = yield* PluginFiles
    const walked = yield* files.walk(dir, plugin)
    return yield* hashPluginTree(plugin, walked)
  })

/** The verifier `TreeDigestVerifierLive` provides, made from the PluginFiles and Hashing in context. */
export const makeTreeDigestVerifier = Effect.gen(function* () {
  const context = yield* Effect.context<PluginFiles | Hashing>()
  const check = (plugin: string, locked: LockEntry) => (measured: Parameters<typeof lockMismatch>[2]) => {
    const mismatch = lockMismatch(plugin, locked, measured)
    return mismatch === undefined ? Effect.void : Effect.fail(mismatch)
  }
  return PluginVerifier.of({
    verify: (plugin, locked) =>
      measureTree(plugin.dir, plugin.id).pipe(
        Effect.flatMap(check(plugin.id, locked)),
        Effect.provide(context),
        Effect.withSpan("plinth.verify.plugin", { attributes: { "plinth.plugin": plugin.id } }),
      ),
    verifyFiles: (plugin, files, locked) =>
      hashPluginTree(plugin.id, files).pipe(
        Effect.flatMap(check(plugin.id, locked)),
        Effect.provide(context),
        Effect.withSpan("plinth.verifyFiles", { attributes: { "plinth.plugin": plugin.id } }),
      ),
  })
})

export const TreeDigestVerifierLive = Layer.effect(PluginVerifier, makeTreeDigestVerifier)
