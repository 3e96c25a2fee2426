import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { Effect, Layer } from "effect"
import { EmpiricalStoreMemory, PlinthLive, PluginManager, PluginManagerLive } from "@plinth/runtime"

/*
 * The README's PluginManager example, as a host runs it: the built packages,
 * the examples and the repository's lock.
 */
describe("the README's PluginManager example", () => {
  it("loads two instances of showcase with their own configs, disables one, calls the other", async () => {
    const root = join(import.meta.dirname, "../examples/plugins")
    const lock = join(import.meta.dirname, "../PLUGINS.lock")
    const program = Effect.gen(function* () {
      const manager = yield* PluginManager
      yield* manager.load("showcase", { config: { greeting: "Hi" } })
      const other = yield* manager.load("showcase", { newInstance: true })
      yield* manager.disable(other.id)
      const refused = yield* Effect.flip(manager.execute(other.id, "greet", { name: "Bo" }))
      return { greeting: yield* manager.execute("showcase", "greet", { name: "Ada" }), refused: refused._tag, other: other.id }
    })
    const live = PluginManagerLive({ root, lock }).pipe(Layer.provide(Layer.merge(PlinthLive, EmpiricalStoreMemory)))
    const outcome = await Effect.runPromise(program.pipe(Effect.provide(live)))
    expect(outcome.greeting).toEqual({ text: "Hi, Ada!" })
    expect(outcome.refused).toBe("PluginDisabled")
    expect(outcome.other).toMatch(/^showcase-[0-9a-f]{6}$/)
  })
})
