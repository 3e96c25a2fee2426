import { afterAll, describe, expect, it } from "@effect/vitest"
import { rmSync } from "node:fs"
import { Effect } from "effect"
import { categoryOf, type PluginFailure } from "@plinth/domain"
import { startInstance } from "@plinth/runtime"
import { tempDir } from "../support/plugins.js"
import { hostilePlugin, IsolationTestLive, isAlive, tiers } from "./support/isolation.js"

const root = tempDir("plinth-hostile-memory-")
afterAll(() => rmSync(root, { recursive: true, force: true }))

// Bounded: 512 MiB of arrays at most, far past the 64 MiB cap below and far below Node's own heap limit,
// so only the cap stops it (the worker resets V8's flags after start-up: process/DefaultV8Flags.ts).
const actions = `
  bomb: action({ description: "", input: Schema.Struct({}), output: Schema.Number, handler: () => Effect.sync(() => {
    const hoard = []
    for (let i = 0; i < 512; i++) hoard.push(new Array(128 * 1024).fill(i))
    return hoard.length
  }) }),
  ok: action({ description: "", input: Schema.Struct({}), output: Schema.String, handler: () => Effect.succeed("ok") }),
`

describe.each(tiers)("isolation tier %s: a heap bomb", (tier) => {
  it.scopedLive("dies at the manifest's heap cap as WorkerOutOfMemory (resource, never transient); the host lives and the next call restarts", () =>
    Effect.gen(function* () {
      const { plugin, locked } = yield* hostilePlugin(root, `bomb-${tier}`, { actions, manifest: { resources: { memoryMiB: 64 } } })
      const instance = yield* startInstance({ plugin, locked, drift: "ignore", isolation: tier })
      const hostRssBefore = process.memoryUsage().rss
      const failure: PluginFailure = yield* Effect.flip(instance.invoke("bomb", {}))
      expect(failure).toMatchObject({ _tag: "WorkerOutOfMemory", plugin: `bomb-${tier}` })
      expect(categoryOf(failure)).toBe("resource")
      expect(isAlive(process.pid)).toBe(true)
      expect(process.memoryUsage().rss - hostRssBefore).toBeLessThan(64 * 1024 * 1024)
      expect(yield* instance.invoke("ok", {})).toBe("ok")
    }).pipe(Effect.provide(IsolationTestLive)),
  )
})
