import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { Digest, PluginId, PluginManifest } from "@plinth/domain"
import { DuplicatePlugin, Registry, RegistryLive, type RegisteredPlugin } from "@plinth/runtime"

const plugin = (id: string): RegisteredPlugin => ({
  id: id as PluginId,
  dir: `/plugins/${id}`,
  manifest: { id, version: "1.0.0", description: "", entry: "index.js" } as PluginManifest,
  digest: `h1:${"A".repeat(43)}=` as Digest,
  module: {},
})

describe("Registry", () => {
  it.effect("keeps plugins in registration order", () =>
    Effect.gen(function* () {
      const registry = yield* Registry
      yield* registry.registerAll([plugin("b"), plugin("a")])
      yield* registry.registerAll([plugin("c")])
      expect((yield* registry.list).map((p) => p.id)).toEqual(["b", "a", "c"])
      expect((yield* registry.get("a"))?.dir).toBe("/plugins/a")
    }).pipe(Effect.provide(RegistryLive)),
  )

  it.effect("refuses a duplicate id and registers nothing from that batch", () =>
    Effect.gen(function* () {
      const registry = yield* Registry
      yield* registry.registerAll([plugin("a")])
      const error = yield* Effect.flip(registry.registerAll([plugin("z"), plugin("a")]))
      expect(error).toEqual(new DuplicatePlugin({ plugin: "a" }))
      expect((yield* registry.list).map((p) => p.id)).toEqual(["a"])
      const inBatch = yield* Effect.flip(registry.registerAll([plugin("q"), plugin("q")]))
      expect(inBatch.plugin).toBe("q")
      expect(yield* registry.has("q")).toBe(false)
    }).pipe(Effect.provide(RegistryLive)),
  )

  it.effect("resets to empty", () =>
    Effect.gen(function* () {
      const registry = yield* Registry
      yield* registry.registerAll([plugin("a"), plugin("b")])
      yield* registry.reset
      expect(yield* registry.list).toEqual([])
      yield* registry.registerAll([plugin("a")])
      expect(yield* registry.has("a")).toBe(true)
    }).pipe(Effect.provide(RegistryLive)),
  )
})
