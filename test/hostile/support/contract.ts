import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Layer } from "effect"
import type { LockEntry, PluginManifest } from "@plinth/domain"
import { describePlugin, HashingLive, measureTree, PluginFilesLive, ProcessSpawner, ProcessSpawnerLive, TreeDigestVerifierLive } from "@plinth/runtime"

/*
 * Plugins that break the contract of their reviewed manifest, for the
 * contract-* hostile tests: real folders, real locks, real workers.
 */

export const ContractLive = Layer.mergeAll(TreeDigestVerifierLive, ProcessSpawnerLive).pipe(
  Layer.provideMerge(Layer.mergeAll(HashingLive, PluginFilesLive)),
)

export const tempRoot = (label: string) => mkdtempSync(join(tmpdir(), `plinth-contract-${label}-`))

export { isAlive } from "../../support/processes.js"

/** A plugin module built with definePlugin; `actions` is the body of the actions builder. */
export const pluginModule = (actions: string, options: { readonly prelude?: string; readonly config?: string } = {}) => `
import { Duration, Effect, Schema, Stream } from "effect"
import { definePlugin } from "@plinth/domain"
import { writeFileSync } from "node:fs"
${options.prelude ?? ""}
export default definePlugin({
  config: ${options.config ?? "Schema.Struct({})"},
  actions: ({ action, streaming }) => ({ ${actions} }),
})
`

export interface WrittenPlugin {
  readonly plugin: { readonly id: string; readonly dir: string; readonly manifest: PluginManifest }
  readonly locked: LockEntry
}

export const lockEntryOf = (dir: string, id: string): Effect.Effect<LockEntry> =>
  measureTree(dir, id).pipe(
    Effect.map(({ entries, digest }) => ({ digest, files: Object.fromEntries(entries.map((e) => [e.path, e.sha256])) })),
    Effect.orDie,
    Effect.provide(ContractLive),
  )

/**
 * Writes a plugin, asks its code what it declares (as `plinth plugins describe
 * --write` does), lets the test change that into the manifest a reviewer
 * approved, writes it and locks the folder as it then is.
 */
export const writeReviewedPlugin = (
  root: string,
  id: string,
  source: string,
  review: (manifest: PluginManifest) => PluginManifest = (manifest) => manifest,
  extra: Partial<PluginManifest> = {},
): Effect.Effect<WrittenPlugin, unknown> =>
  Effect.gen(function* () {
    const dir = join(root, id)
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, "index.js"), source)
    const bare = { id, version: "1.0.0", description: `hostile fixture ${id}`, entry: "index.js", ...extra } as PluginManifest
    writeFileSync(join(dir, "plugin.json"), JSON.stringify(bare, null, 2))
    const declaration = yield* describePlugin({ plugin: { id, dir, manifest: bare }, locked: yield* lockEntryOf(dir, id) })
    const manifest = review({ ...bare, actions: declaration.actions, config: declaration.config })
    writeFileSync(join(dir, "plugin.json"), JSON.stringify(manifest, null, 2))
    return { plugin: { id, dir, manifest }, locked: yield* lockEntryOf(dir, id) }
  }).pipe(Effect.provide(ContractLive))

/** Runs an effect once, on first use; every later use gets the same result. */
export const once = <A>(effect: Effect.Effect<A, unknown>): Effect.Effect<A> => {
  let result: Promise<A> | undefined
  return Effect.promise(() => (result ??= Effect.runPromise(effect)))
}

/** The live spawner, counting the worker processes it starts. */
export const countingSpawner = () => {
  let spawned = 0
  const layer = Layer.effect(
    ProcessSpawner,
    Effect.map(ProcessSpawner, (live) => ProcessSpawner.of({ spawn: (request) => Effect.tap(live.spawn(request), () => void spawned++) })),
  ).pipe(Layer.provide(ProcessSpawnerLive))
  return { layer, spawned: () => spawned }
}

/** Waits up to `millis` for a file to appear; false if it never does. */
export const appears = async (file: string, millis: number) => {
  const deadline = Date.now() + millis
  while (Date.now() < deadline) {
    if (existsSync(file)) return true
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  return existsSync(file)
}

/**
 * The pid of the instance's worker process as the host sees it, after a call
 * has made sure one runs (inside the OS tier the worker's own `process.pid`
 * is a pid of its own namespace, not one the host can check).
 */
export const workerPid = (instance: { readonly invoke: (action: string, input: unknown) => Effect.Effect<unknown, unknown>; readonly pid: Effect.Effect<number | undefined> }) =>
  Effect.flatMap(Effect.ignore(instance.invoke("pid", {})), () => Effect.map(instance.pid, (pid) => pid!))
