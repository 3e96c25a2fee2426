import { join } from "node:path"
import { Effect, Layer } from "effect"
import { PlinthLive } from "../src/Layers.js"
import { lockPlugins } from "../src/loading/Locking.js"
import { ProcessSpawner, ProcessSpawnerLive } from "../src/instance/ProcessSpawner.js"
import { PluginManagerLive, type PluginManagerOptions } from "../src/manager/PluginManager.js"
import type { ManagerConfigs } from "../src/manager/ManagerConfigs.js"
import { EmpiricalStoreMemory } from "../src/stores/EmpiricalStore.js"
import { described, makeTempDir, writePlugin } from "./workerFixtures.js"

/**
 * A plugin for the manager's tests: a config with a default, hooks that
 * record themselves in the worker, and actions that report what the worker
 * saw (the hook log, how many calls ran at once).
 */
export const probeSource = (config = `Schema.Struct({
    greeting: Schema.optionalWith(Schema.String, { default: () => "Hello" }),
    even: Schema.optional(Schema.Number.pipe(Schema.filter((n) => n % 2 === 0))),
  })`) => `
import { Effect, Schema, Stream, Duration } from "effect"
import { definePlugin, PluginInputError, PluginTransientError, PluginFatalError } from "@plinth/domain"
const hooks = []
let active = 0
let most = 0
export default definePlugin({
  config: ${config},
  onEnable: () => Effect.sync(() => void hooks.push("enable")),
  onDisable: () => Effect.sync(() => void hooks.push("disable")),
  actions: ({ action, streaming }) => ({
    config: action({ description: "the config as decoded", input: Schema.Struct({}), output: Schema.Unknown, handler: (_, { config }) => Effect.succeed(config) }),
    hooks: action({ description: "the hooks run so far", input: Schema.Struct({}), output: Schema.Array(Schema.String), handler: () => Effect.sync(() => [...hooks]) }),
    slow: action({
      description: "waits, then returns the hooks run so far and the most calls seen at once",
      input: Schema.Struct({ millis: Schema.Number, tag: Schema.optional(Schema.Number) }),
      output: Schema.Struct({ hooks: Schema.Array(Schema.String), most: Schema.Number, tag: Schema.optional(Schema.Number) }),
      handler: ({ millis, tag }) =>
        Effect.gen(function* () {
          active++
          most = Math.max(most, active)
          yield* Effect.sleep(Duration.millis(millis)).pipe(Effect.ensuring(Effect.sync(() => active--)))
          return { hooks: [...hooks], most, ...(tag === undefined ? {} : { tag }) }
        }),
    }),
    fail: action({
      description: "fails in the category asked for",
      input: Schema.Struct({ category: Schema.Literal("input", "transient", "fatal") }),
      output: Schema.Null,
      handler: ({ category }) =>
        Effect.fail(
          category === "input" ? new PluginInputError({ message: "bad input" })
          : category === "transient" ? new PluginTransientError({ message: "try later" })
          : new PluginFatalError({ message: "broken" }),
        ),
    }),
    count: streaming({
      description: "counts to n",
      input: Schema.Struct({ to: Schema.Number }),
      output: Schema.Number,
      stream: ({ to }) => Stream.range(1, to),
    }),
  }),
})
`

export interface ManagerWorkspace {
  readonly root: string
  readonly lock: string
  readonly dataRoot: string
}

/** A plugin root with the given plugins (their manifests described from their code), locked. */
export const managerWorkspace = (
  plugins: ReadonlyArray<{ readonly id: string; readonly source: string; readonly manifest?: Record<string, unknown> }>,
): Effect.Effect<ManagerWorkspace, unknown> =>
  Effect.gen(function* () {
    const dir = makeTempDir("manager")
    const root = join(dir, "plugins")
    for (const plugin of plugins) yield* described(writePlugin(root, plugin.id, { "index.js": plugin.source }, plugin.manifest ?? {}))
    const lock = join(dir, "PLUGINS.lock")
    yield* lockPlugins({ root, lock, check: false }).pipe(Effect.provide(PlinthLive))
    return { root, lock, dataRoot: join(dir, "data") }
  })

/** The pids of every worker process spawned through this spawner, in order. */
export const recordingSpawner = () => {
  const spawned: Array<number> = []
  const layer = Layer.effect(
    ProcessSpawner,
    Effect.map(ProcessSpawner, (live) => ({
      spawn: (request: Parameters<typeof live.spawn>[0]) =>
        Effect.tap(live.spawn(request), (child) => Effect.sync(() => void (child.pid !== undefined && spawned.push(child.pid)))),
    })),
  ).pipe(Layer.provide(ProcessSpawnerLive))
  return { spawned, layer }
}

/** A manager over the workspace, spawning through `spawner`; closing it stops every worker. */
export const managerLayer = (
  ws: ManagerWorkspace,
  spawner: Layer.Layer<ProcessSpawner>,
  options: Partial<PluginManagerOptions> = {},
  configs: Layer.Layer<ManagerConfigs> | undefined = undefined,
) =>
  PluginManagerLive({ root: ws.root, lock: ws.lock, dataRoot: ws.dataRoot, isolation: "permissions", ...options }).pipe(
    Layer.provide(Layer.mergeAll(PlinthLive, spawner, EmpiricalStoreMemory, configs ?? Layer.empty)),
  )

export const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
