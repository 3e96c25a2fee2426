import { spawn, type ChildProcess } from "node:child_process"
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { Effect, Layer } from "effect"
import type { LockEntry, PluginManifest } from "@plinth/domain"
import { isAlive } from "../../support/processes.js"
import { describePlugin, HashingLive, measureTree, isolationTiers, PluginFilesLive, ProcessSpawnerLive, TreeDigestVerifierLive, type IsolationTier } from "@plinth/runtime"

/* Shared by the isolation hostile tests: plugins written on the fly, real hosts, real pids. */

/** Every isolation tier: the hostile tests run each attack in all of them. */
export const tiers = isolationTiers

export const IsolationTestLive = Layer.mergeAll(TreeDigestVerifierLive, ProcessSpawnerLive).pipe(
  Layer.provideMerge(Layer.mergeAll(HashingLive, PluginFilesLive)),
)

export interface HostilePlugin {
  readonly plugin: { readonly id: string; readonly dir: string; readonly manifest: PluginManifest }
  readonly locked: LockEntry
}

/** A plugin whose entry is built with definePlugin; `actions` is the body of the actions builder. */
export const hostilePlugin = (
  root: string,
  id: string,
  options: {
    readonly actions: string
    readonly prelude?: string
    readonly manifest?: Partial<PluginManifest>
    readonly files?: Readonly<Record<string, string>>
  },
): Effect.Effect<HostilePlugin> => {
  const dir = join(root, id)
  const manifest = { id, version: "1.0.0", description: `hostile ${id}`, entry: "index.js", ...options.manifest } as PluginManifest
  const files: Record<string, string> = {
    ...options.files,
    "index.js": `
import { Effect, Schema, Stream, Duration } from "effect"
import { definePlugin } from "@plinth/domain"
${options.prelude ?? ""}
export default definePlugin({
  config: Schema.Struct({}),
  actions: ({ action, streaming }) => ({ ${options.actions} }),
})
`,
  }
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true })
    writeFileSync(join(dir, path), text)
  }
  writeFileSync(join(dir, "plugin.json"), JSON.stringify(manifest, null, 2))
  const lockNow = measureTree(dir, id).pipe(
    Effect.map(({ entries, digest }): LockEntry => ({ digest, files: Object.fromEntries(entries.map((e) => [e.path, e.sha256])) } as LockEntry)),
  )
  // The host calls only what the reviewed manifest declares: write the code's declaration into it, as `describe --write` does.
  return Effect.gen(function* () {
    const declaration = yield* describePlugin({ plugin: { id, dir, manifest }, locked: yield* lockNow, isolation: "permissions" })
    const reviewed = { actions: declaration.actions, config: declaration.config, ...manifest } as PluginManifest
    writeFileSync(join(dir, "plugin.json"), JSON.stringify(reviewed, null, 2))
    return { plugin: { id, dir, manifest: reviewed }, locked: yield* lockNow }
  }).pipe(Effect.orDie, Effect.provide(IsolationTestLive))
}

export { isAlive }

/** A process and all its descendants (a bwrap sandbox is three processes deep), from /proc. */
export const processTree = (pid: number): ReadonlyArray<number> => {
  const tree = [pid]
  const tasks = `/proc/${pid}/task`
  if (!existsSync(tasks)) return tree
  for (const task of readdirSync(tasks)) {
    let children = ""
    try {
      children = readFileSync(join(tasks, task, "children"), "utf8")
    } catch {
      continue
    }
    for (const child of children.split(/\s+/).filter((c) => c !== "")) tree.push(...processTree(Number(child)))
  }
  return tree
}

/** Waits until none of the pids is alive or the deadline passes; returns the survivors (and kills them, to leave nothing behind). */
export const survivorsAfter = async (pids: ReadonlyArray<number>, millis: number): Promise<ReadonlyArray<number>> => {
  const deadline = Date.now() + millis
  while (pids.some(isAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  const survivors = pids.filter(isAlive)
  for (const pid of survivors) {
    try {
      process.kill(pid, "SIGKILL")
    } catch {
      // gone meanwhile
    }
  }
  return survivors
}

const hostScript = join(import.meta.dirname, "isolation-host.mjs")

export interface RunningHost {
  readonly host: ChildProcess
  /** The worker's pid as the host sees it. */
  readonly workerPid: number
}

/**
 * A host in its own Node process (so that it can be killed with -9): starts
 * the plugin in the given tier, sends one call it never waits for, and prints
 * the worker's pid once the call has had time to start.
 */
export const startHost = (plugin: HostilePlugin, tier: IsolationTier, action: string): Promise<RunningHost> =>
  new Promise((resolve, reject) => {
    const host = spawn(process.execPath, [hostScript, JSON.stringify({ ...plugin, tier, action })], { stdio: ["ignore", "pipe", "pipe"] })
    let stderr = ""
    host.stderr!.on("data", (chunk: Buffer) => void (stderr += chunk.toString()))
    host.stdout!.on("data", (chunk: Buffer) => {
      const match = /calling (\d+)/.exec(chunk.toString())
      if (match) resolve({ host, workerPid: Number(match[1]) })
    })
    host.on("exit", (code) => reject(new Error(`the host exited early with ${code}: ${stderr}`)))
  })
