import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import { PluginManager } from "../src/manager/PluginManager.js"
import { removeDir } from "./workerFixtures.js"
import { isAlive, managerLayer, managerWorkspace, probeSource, recordingSpawner, type ManagerWorkspace } from "./managerFixtures.js"
import { dirname } from "node:path"

let ws: ManagerWorkspace
beforeAll(async () => {
  ws = await Effect.runPromise(
    managerWorkspace([
      { id: "probe", source: probeSource() },
      { id: "other", source: probeSource() },
    ]),
  )
}, 60_000)
afterAll(() => removeDir(dirname(ws.root)))

describe("PluginManager instances", () => {
  it.live("the default instance, fresh instances and explicit ids; loading a loaded id starts nothing", () => {
    const { spawned, layer } = recordingSpawner()
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      expect(manager.plugins).toEqual(["other", "probe"])
      // Verifying all plugins started no worker.
      expect(spawned).toEqual([])

      const first = yield* manager.load("probe")
      expect(first).toMatchObject({ id: "probe", plugin: "probe", enabled: true, config: {} })
      expect(spawned).toEqual([first.pid])
      const again = yield* manager.load("probe")
      expect(again.pid).toBe(first.pid)
      expect(spawned).toHaveLength(1)

      const fresh = yield* manager.load("probe", { newInstance: true })
      expect(fresh.id).toMatch(/^probe-[0-9a-f]{6}$/)
      const fresh2 = yield* manager.load("probe", { newInstance: true })
      expect(fresh2.id).not.toBe(fresh.id)
      expect(new Set([first.pid, fresh.pid, fresh2.pid]).size).toBe(3)

      const short = yield* manager.load("probe", { instanceId: "a" })
      const long = yield* manager.load("probe", { instanceId: "x".repeat(64) })
      expect([short.id, long.id]).toEqual(["a", "x".repeat(64)])
      expect(yield* manager.execute("a", "config", {})).toEqual({ greeting: "Hello" })
      expect((yield* manager.list).map((i) => i.id)).toEqual(["a", "probe", fresh.id, fresh2.id, "x".repeat(64)].sort())
      expect(yield* manager.get(fresh.id)).toMatchObject({ id: fresh.id, plugin: "probe", pid: fresh.pid })
    }).pipe(Effect.provide(managerLayer(ws, layer)))
  })

  it.live("an unusable instance id is a typed input error before any process starts", () => {
    const { spawned, layer } = recordingSpawner()
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      for (const bad of ["", "x".repeat(65), "a b", "a/b", "a.b", "a\nb", "A", 42, null]) {
        const error = yield* Effect.flip(manager.load("probe", { instanceId: bad }))
        expect(error._tag).toBe("InvalidInstanceId")
      }
      expect((yield* Effect.flip(manager.load("probe", { instanceId: "both", newInstance: true })))._tag).toBe("InvalidInstanceId")
      const unknown = yield* Effect.flip(manager.load("nope"))
      expect(unknown).toMatchObject({ _tag: "PluginNotFound", plugin: "nope", known: ["other", "probe"] })
      expect(spawned).toEqual([])
      expect(yield* manager.list).toEqual([])
      const missing = yield* Effect.flip(manager.execute("ghost", "config", {}))
      expect(missing).toMatchObject({ _tag: "InstanceNotLoaded", instance: "ghost" })
    }).pipe(Effect.provide(managerLayer(ws, layer)))
  })

  it.live("unload stops one instance and leaves the plugin's others callable; reload always starts a fresh worker; closing the manager stops all", () => {
    const { spawned, layer } = recordingSpawner()
    return Effect.gen(function* () {
      const pids = yield* Effect.gen(function* () {
        const manager = yield* PluginManager
        const main = yield* manager.load("probe")
        const extra = yield* manager.load("probe", { newInstance: true })
        const other = yield* manager.load("other")
        yield* manager.unload("probe")
        expect(isAlive(main.pid!)).toBe(false)
        expect(yield* manager.execute(extra.id, "config", {})).toEqual({ greeting: "Hello" })
        expect((yield* Effect.flip(manager.execute("probe", "config", {})))._tag).toBe("InstanceNotLoaded")
        expect((yield* Effect.flip(manager.unload("probe")))._tag).toBe("InstanceNotLoaded")

        const reloaded = yield* manager.reload(extra.id)
        expect(reloaded.pid).not.toBe(extra.pid)
        expect(isAlive(extra.pid!)).toBe(false)
        expect(yield* manager.execute(extra.id, "config", {})).toEqual({ greeting: "Hello" })
        const withConfig = yield* manager.reload(extra.id, { greeting: "Hi" })
        expect(withConfig.pid).not.toBe(reloaded.pid)
        expect(yield* manager.execute(extra.id, "config", {})).toEqual({ greeting: "Hi" })
        return [withConfig.pid!, other.pid!]
      }).pipe(Effect.provide(managerLayer(ws, layer)))
      expect(spawned.length).toBe(5)
      for (const pid of [...pids, ...spawned]) expect(isAlive(pid)).toBe(false)
    })
  })

  it.live("execute and stream go through the manager; bind gives a pre-bound view", () => {
    const { spawned, layer } = recordingSpawner()
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      yield* manager.load("probe")
      expect(yield* manager.execute("probe", "config", {})).toEqual({ greeting: "Hello" })
      const items = yield* Stream.runCollect(manager.stream("probe", "count", { to: 4 }))
      expect(Chunk.toArray(items)).toEqual([1, 2, 3, 4])
      // Leaving a stream early ends the call; the instance goes on serving.
      expect(Chunk.toArray(yield* Stream.runCollect(Stream.take(manager.stream("probe", "count", { to: 1000 }), 2)))).toEqual([1, 2])
      expect(yield* manager.execute("probe", "config", {})).toEqual({ greeting: "Hello" })
      const bound = manager.bind("other", { greeting: "Hey" })
      expect(yield* bound.execute("config", {})).toEqual({ greeting: "Hey" })
      const pid = (yield* manager.get("other")).pid
      expect(yield* bound.execute("config", {})).toEqual({ greeting: "Hey" })
      expect((yield* manager.get("other")).pid).toBe(pid)
      expect(spawned).toHaveLength(2)
    }).pipe(Effect.provide(managerLayer(ws, layer)))
  })
})
