import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import { Effect, Either } from "effect"
import {
  canonicalJson,
  declarationDifferences,
  decodeJsonText,
  JsonSchemaDocument,
  manifestCaps,
  SchemaViolation,
  type DeclarationDifference,
  type PluginDeclaration,
  type PluginId,
} from "@plinth/domain"
import { MANIFEST_FILE, readManifest } from "./loading/Manifests.js"
import { describePlugin } from "./instance/Instance.js"
import type { IsolationTier } from "./instance/Isolation.js"
import { measureTree } from "./loading/PluginVerifier.js"
import { PluginNotFound, requirePluginFolder } from "./loading/PluginNotFound.js"
import { discoverAndVerify } from "./loading/Loader.js"

export interface DescribeOutcome {
  readonly declaration: PluginDeclaration
  /** Whether plugin.json already carries this declaration. */
  readonly upToDate: boolean
  readonly written: boolean
}

/**
 * The manifest's JSON object with `actions` and `config` replaced by the live
 * declaration. It works on the object as written, not the decoded manifest, so
 * the file keeps its own key order and a rewrite changes only what changed.
 */
export const withDeclaration = (
  manifestJson: Readonly<Record<string, unknown>>,
  declaration: PluginDeclaration,
): Record<string, unknown> => ({ ...manifestJson, actions: declaration.actions, config: declaration.config })

/**
 * Loads a plugin as it is on disk now in a sandboxed worker and returns what it
 * declares (actions and config JSON Schemas, from its Schemas); with `write`,
 * stores that in plugin.json. This runs plugin code, so it is an operation,
 * not an observation; it is for authors, before review, so it hashes the tree
 * as found rather than against the lock (the worker still runs exactly the
 * bytes that were hashed). Re-lock after writing.
 */
export const describeLocalPlugin = (options: {
  readonly root: string
  readonly id: string
  readonly write: boolean
  /** The worker's isolation tier (Isolation.ts); default the strongest available. */
  readonly isolation?: IsolationTier
}) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    yield* requirePluginFolder(options.root, options.id)
    const dir = path.join(options.root, options.id)
    const manifest = yield* readManifest(dir, options.id)
    const { entries, digest } = yield* measureTree(dir, options.id)
    const declaration = yield* describePlugin({
      plugin: { id: options.id, dir, manifest },
      locked: { digest, files: Object.fromEntries(entries.map((e) => [e.path, e.sha256])) },
      ...(options.isolation !== undefined ? { isolation: options.isolation } : {}),
    })
    const upToDate =
      canonicalJson(manifest.actions ?? {}) === canonicalJson(declaration.actions) &&
      canonicalJson(manifest.config ?? {}) === canonicalJson(declaration.config)
    const written = options.write && !upToDate
    if (written) {
      const file = path.join(dir, MANIFEST_FILE)
      const text = yield* fs.readFileString(file)
      // Reread as a plain JSON object (through the capped decoder) to keep the key order as written.
      const manifestJson = yield* Either.mapLeft(decodeJsonText(JsonSchemaDocument, text, manifestCaps), (detail) => new SchemaViolation({ plugin: options.id, detail }))
      const temporary = `${file}.${process.pid}.tmp`
      yield* fs.writeFileString(temporary, JSON.stringify(withDeclaration(manifestJson, declaration), null, 2) + "\n")
      yield* fs.rename(temporary, file)
    }
    const outcome: DescribeOutcome = { declaration, upToDate, written }
    return outcome
  })

/** One plugin's manifest against what its verified code declares: the differences, none when up to date. */
export interface DeclarationCheck {
  readonly id: string
  readonly differences: ReadonlyArray<DeclarationDifference>
}

export interface DeclarationCheckOutcome {
  readonly plugins: ReadonlyArray<DeclarationCheck>
  /** True when no manifest differs from its plugin's code. */
  readonly upToDate: boolean
}

/**
 * The drift check for CI (`plinth plugins describe --check`): verifies every
 * plugin against the lock (any rejection fails it, as `verify` would), then
 * loads each one (or only `only`) in a sandboxed worker from the verified
 * bytes, exactly what a start would run, and compares what its code declares
 * with its manifest. A stale manifest would otherwise pass `verify` and
 * `lock --check` and refuse every start (DeclarationDrift). Writes nothing.
 */
export const checkDeclarations = (options: {
  readonly root: string
  readonly lock: string
  readonly only?: string
  readonly isolation?: IsolationTier
}) =>
  Effect.gen(function* () {
    const { lock, discovered } = yield* discoverAndVerify({ root: options.root, lock: options.lock })
    const targets = options.only === undefined ? discovered : discovered.filter((plugin) => plugin.id === options.only)
    if (options.only !== undefined && targets.length === 0) {
      return yield* new PluginNotFound({ plugin: options.only, known: discovered.map((plugin) => plugin.id) })
    }
    // One worker at a time: the check is for CI, which shares its cores.
    const plugins = yield* Effect.forEach(targets, (plugin) =>
      Effect.map(
        describePlugin({ plugin, locked: lock.plugins[plugin.id as PluginId]!, ...(options.isolation !== undefined ? { isolation: options.isolation } : {}) }),
        (declaration): DeclarationCheck => ({ id: plugin.id, differences: declarationDifferences(plugin.manifest, declaration) }),
      ),
    )
    const outcome: DeclarationCheckOutcome = { plugins, upToDate: plugins.every((plugin) => plugin.differences.length === 0) }
    return outcome
  })
