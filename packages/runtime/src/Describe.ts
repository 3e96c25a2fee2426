import { FileSystem, Path } from "@effect/platform"
import { Effect, Schema } from "effect"
import { canonicalJson, PluginId, SchemaViolation, type PluginDeclaration, type PluginManifest } from "@plinth/domain"
import { MANIFEST_FILE, readManifest } from "./Manifests.js"
import { describePlugin } from "./PluginManager.js"
import { measureTree } from "./PluginVerifier.js"

export interface DescribeOutcome {
  readonly declaration: PluginDeclaration
  /** Whether plugin.json already carries this declaration. */
  readonly upToDate: boolean
  readonly written: boolean
}

/** The manifest with its `actions` and `config` replaced by the live declaration, keys in a stable order. */
export const withDeclaration = (manifest: PluginManifest, declaration: PluginDeclaration): PluginManifest => {
  const { id, version, description, entry, permissions } = manifest
  return {
    id,
    version,
    description,
    entry,
    actions: declaration.actions,
    config: declaration.config,
    ...(permissions !== undefined ? { permissions } : {}),
  }
}

/**
 * Loads a plugin as it is on disk now in a sandboxed worker and returns what it
 * declares (actions and config JSON Schemas, from its Schemas); with `write`,
 * stores that in plugin.json. This runs plugin code, so it is an operation,
 * not an observation; it is for authors, before review, so it hashes the tree
 * as found rather than against the lock (the worker still runs exactly the
 * bytes that were hashed). Re-lock after writing.
 */
export const describeLocalPlugin = (options: { readonly root: string; readonly id: string; readonly write: boolean }) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    if (!Schema.is(PluginId)(options.id)) {
      return yield* new SchemaViolation({ plugin: options.id, detail: "not a plugin id (a lower-case slug of 1-64 characters)" })
    }
    const dir = path.join(options.root, options.id)
    const manifest = yield* readManifest(dir, options.id)
    const { entries, digest } = yield* measureTree(dir, options.id)
    const declaration = yield* describePlugin({
      plugin: { id: options.id, dir, manifest },
      locked: { digest, files: Object.fromEntries(entries.map((e) => [e.path, e.sha256])) },
    })
    const upToDate =
      canonicalJson(manifest.actions ?? {}) === canonicalJson(declaration.actions) &&
      canonicalJson(manifest.config ?? {}) === canonicalJson(declaration.config)
    const written = options.write && !upToDate
    if (written) {
      const file = path.join(dir, MANIFEST_FILE)
      const temporary = `${file}.${process.pid}.tmp`
      yield* fs.writeFileString(temporary, JSON.stringify(withDeclaration(manifest, declaration), null, 2) + "\n")
      yield* fs.rename(temporary, file)
    }
    const outcome: DescribeOutcome = { declaration, upToDate, written }
    return outcome
  })
