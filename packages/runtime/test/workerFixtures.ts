import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { Effect, Layer } from "effect"
import type { LockEntry, PluginManifest } from "@plinth/domain"
import { HashingLive } from "../src/hashing/Hashing.js"
import { PluginFilesLive } from "../src/loading/PluginFiles.js"
import { measureTree, TreeDigestVerifierLive } from "../src/loading/PluginVerifier.js"
import { ProcessSpawnerLive } from "../src/instance/ProcessSpawner.js"
import { describePlugin } from "../src/instance/Instance.js"

export const WorkerTestLive = Layer.mergeAll(TreeDigestVerifierLive, ProcessSpawnerLive).pipe(
  Layer.provideMerge(Layer.mergeAll(HashingLive, PluginFilesLive)),
)

export const makeTempDir = (label: string) => mkdtempSync(join(tmpdir(), `plinth-${label}-`))
export const removeDir = (dir: string) => rmSync(dir, { recursive: true, force: true })

export interface FixturePlugin {
  readonly id: string
  readonly dir: string
  readonly manifest: PluginManifest
}

/** Writes a plugin folder with the given files (paths relative to it) and a manifest. */
export const writePlugin = (
  root: string,
  id: string,
  files: Record<string, string>,
  manifest: Partial<PluginManifest> = {},
): FixturePlugin => {
  const dir = join(root, id)
  const full = { id, version: "1.0.0", description: `fixture ${id}`, entry: "index.js", ...manifest } as PluginManifest
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true })
    writeFileSync(join(dir, path), text)
  }
  writeFileSync(join(dir, "plugin.json"), JSON.stringify(full, null, 2))
  return { id, dir, manifest: full }
}

/** The lock entry for a plugin folder as it is now. */
export const lockOf = (plugin: FixturePlugin): Effect.Effect<LockEntry> =>
  measureTree(plugin.dir, plugin.id).pipe(
    Effect.map(({ entries, digest }) => ({ digest, files: Object.fromEntries(entries.map((e) => [e.path, e.sha256])) })),
    Effect.orDie,
    Effect.provide(WorkerTestLive),
  )

export const readManifest = (dir: string): PluginManifest => JSON.parse(readFileSync(join(dir, "plugin.json"), "utf8"))

/** A plugin module built with definePlugin; `actions` is the body of the actions builder. */
export const pluginSource = (actions: string, prelude = "") => `
import { Effect, Schema, Stream, Duration } from "effect"
import { definePlugin, PluginTransientError } from "@plinth/domain"
${prelude}
export default definePlugin({
  config: Schema.Struct({}),
  actions: ({ action, streaming }) => ({ ${actions} }),
})
`

/**
 * The plugin with its declaration written into plugin.json, as an author does
 * with `plinth plugins describe --write` before review: the host calls only
 * what the manifest declares.
 */
export const described = (plugin: FixturePlugin): Effect.Effect<FixturePlugin, unknown> =>
  Effect.gen(function* () {
    const declaration = yield* describePlugin({ plugin, locked: yield* lockOf(plugin) })
    const manifest = { ...plugin.manifest, actions: declaration.actions, config: declaration.config } as PluginManifest
    writeFileSync(join(plugin.dir, "plugin.json"), JSON.stringify(manifest, null, 2))
    return { ...plugin, manifest }
  }).pipe(Effect.provide(WorkerTestLive))
