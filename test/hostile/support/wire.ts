// Helpers for the hostile tests of the wire: real plugins, real workers.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { Effect, Layer } from "effect"
import type { LockEntry, PluginManifest } from "@plinth/domain"
import { isAlive } from "../../support/processes.js"
import { HashingLive, measureTree, PluginFilesLive, ProcessSpawner, ProcessSpawnerLive, spawnWorkerProcess, TreeDigestVerifierLive } from "@plinth/runtime"

export const WireLive = Layer.mergeAll(TreeDigestVerifierLive, ProcessSpawnerLive).pipe(Layer.provideMerge(Layer.mergeAll(HashingLive, PluginFilesLive)))

export const tempRoot = (label: string) => mkdtempSync(join(tmpdir(), `plinth-hostile-wire-${label}-`))
export const removeRoot = (dir: string) => rmSync(dir, { recursive: true, force: true })

export interface HostilePlugin {
  readonly id: string
  readonly dir: string
  readonly manifest: PluginManifest
}

/**
 * Every action a plugin source defines (`name: action(…)` / `name: streaming(…)`),
 * declared with schemas that allow anything: these tests show that the wire
 * holds even when the manifest's contract is wide open.
 */
const openContract = (source: string): Pick<PluginManifest, "actions"> => ({
  actions: Object.fromEntries(
    [...source.matchAll(/([A-Za-z][\w-]*):\s*(action|streaming)\(/g)].map(([, name, kind]) => [
      name!,
      { description: "", input: {}, output: {}, ...(kind === "streaming" ? { streaming: true } : {}) },
    ]),
  ) as PluginManifest["actions"] & object,
})

/** A plugin folder: `index.js` from `source`, a manifest declaring `actions` (by default every action in the source, open). */
export const writeHostilePlugin = (
  root: string,
  id: string,
  source: string,
  manifest: Partial<PluginManifest> = {},
  extraFiles: Record<string, string> = {},
): HostilePlugin => {
  const dir = join(root, id)
  const full = { id, version: "1.0.0", description: `hostile ${id}`, entry: "index.js", ...openContract(source), ...manifest } as PluginManifest
  for (const [path, text] of Object.entries({ "index.js": source, ...extraFiles })) {
    mkdirSync(dirname(join(dir, path)), { recursive: true })
    writeFileSync(join(dir, path), text)
  }
  writeFileSync(join(dir, "plugin.json"), JSON.stringify(full, null, 2))
  return { id, dir, manifest: full }
}

export const lockOf = (plugin: HostilePlugin): Effect.Effect<LockEntry> =>
  measureTree(plugin.dir, plugin.id).pipe(
    Effect.map(({ entries, digest }) => ({ digest, files: Object.fromEntries(entries.map((e) => [e.path, e.sha256])) })),
    Effect.orDie,
    Effect.provide(WireLive),
  )

/** A plugin module built with definePlugin; `actions` is the body of the actions builder. */
export const definitionSource = (actions: string, prelude = "") => `
import { Effect, Schema, Stream, Duration } from "effect"
import { definePlugin } from "@plinth/domain"
import * as fs from "node:fs"
${FRAME_HELPERS}
${prelude}
export default definePlugin({
  config: Schema.Struct({}),
  actions: ({ action, streaming }) => ({ ${actions} }),
})
`

/**
 * What hostile module code uses to write raw frames: `frame(obj)` is a
 * well-formed frame, `spray(bytes)` writes bytes to every fd 0..63 it can,
 * ignoring errors, `channel(bytes)` writes them to fd 3, the channel.
 */
export const FRAME_HELPERS = `
const frame = (message) => {
  const body = Buffer.from(typeof message === "string" ? message : JSON.stringify(message))
  const header = Buffer.alloc(4)
  header.writeUInt32BE(body.length)
  return Buffer.concat([header, body])
}
const writeAll = (fd, bytes) => {
  for (let at = 0, tries = 0; at < bytes.length && tries < 10000; tries++) {
    try { at += fs.writeSync(fd, bytes, at) } catch (error) { if (error.code !== "EAGAIN") return }
  }
}
const spray = (bytes) => { for (let fd = 0; fd < 64; fd++) writeAll(fd, bytes) }
const channel = (bytes) => writeAll(3, bytes)
`

export { isAlive }

/** Waits until the process is gone (true) or the deadline passes (false). */
export const waitGone = (pid: number, millis = 3000) =>
  Effect.promise(async () => {
    const deadline = Date.now() + millis
    while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25))
    return !isAlive(pid)
  })

/** An action declaration for a manifest: what `describe` would write for `Schema.Struct({})` in and `output` out. */
export const declared = (names: ReadonlyArray<string>, streaming: ReadonlyArray<string> = []) => ({
  actions: Object.fromEntries(
    [...names, ...streaming].map((name) => [
      name,
      { description: "", input: { type: "object", required: [], properties: {}, additionalProperties: false }, output: {}, ...(streaming.includes(name) ? { streaming: true } : {}) },
    ]),
  ),
})

/** A spawner that remembers the pid of every worker it starts. */
export const recordingSpawner = () => {
  const pids: Array<number> = []
  const layer = Layer.succeed(ProcessSpawner, {
    spawn: (request) =>
      Effect.sync(() => {
        const handle = spawnWorkerProcess(request)
        if (handle.pid !== undefined) pids.push(handle.pid)
        return handle
      }),
  })
  return { pids, layer: Layer.merge(WireLive, layer) }
}
