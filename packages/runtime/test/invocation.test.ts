import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { CallTrace, CallTraceLive, invokePlugin, PlinthLive, PluginNotFound } from "@plinth/runtime"

const root = join(import.meta.dirname, "../../../examples/plugins")
const lock = join(import.meta.dirname, "../../../PLUGINS.lock")

const withTrace = () => {
  const file = join(mkdtempSync(join(tmpdir(), "plinth-invoke-")), "trace.jsonl")
  return Layer.mergeAll(PlinthLive, CallTraceLive(file).pipe(Layer.provide(NodeContext.layer)))
}

describe("invokePlugin: verify, start a sandboxed worker, call, record", () => {
  it.effect("calls a unary action with config and records the call", () =>
    Effect.gen(function* () {
      const result = yield* invokePlugin({ root, lock, plugin: "showcase", action: "greet", input: { name: "Ada" }, config: { greeting: "Hi" } })
      expect(result).toEqual({ kind: "value", value: { text: "Hi, Ada!" } })
      const { calls } = yield* Effect.flatMap(CallTrace, (t) => t.recent(10))
      expect(calls).toHaveLength(1)
      expect(calls[0]).toMatchObject({ plugin: "showcase", action: "greet", outcome: "ok" })
    }).pipe(Effect.provide(withTrace())),
  )

  it.effect("streams items as they arrive, with progress", () =>
    Effect.gen(function* () {
      const items: Array<unknown> = []
      const progress: Array<number> = []
      const result = yield* invokePlugin({
        root,
        lock,
        plugin: "showcase",
        action: "count",
        input: { to: 4 },
        onItem: (item) => Effect.sync(() => void items.push(item)),
        onProgress: (report) => void progress.push(report.fraction),
      })
      expect(result).toEqual({ kind: "stream", items: 4 })
      expect(items).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }])
      expect(progress.at(-1)).toBe(1)
      const { calls } = yield* Effect.flatMap(CallTrace, (t) => t.recent(10))
      expect(calls[0]).toMatchObject({ action: "count", outcome: "ok", items: 4 })
    }).pipe(Effect.provide(withTrace())),
  )

  it.effect("a plugin failure arrives typed and is recorded with its category", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(invokePlugin({ root, lock, plugin: "showcase", action: "fail", input: { category: "transient" } }))
      expect(error._tag).toBe("PluginTransientError")
      const { calls } = yield* Effect.flatMap(CallTrace, (t) => t.recent(10))
      expect(calls[0]).toMatchObject({ action: "fail", outcome: "failed", category: "transient", message: "the service is busy" })
    }).pipe(Effect.provide(withTrace())),
  )

  it.effect("the timeout bounds a whole streaming call", () =>
    Effect.gen(function* () {
      const items: Array<unknown> = []
      const error = yield* Effect.flip(
        invokePlugin({
          root,
          lock,
          plugin: "showcase",
          action: "count",
          input: { to: 50, delayMillis: 100 },
          timeout: "350 millis",
          onItem: (item) => Effect.sync(() => void items.push(item)),
        }),
      )
      expect(error._tag).toBe("InvokeTimeout")
      expect(items.length).toBeGreaterThan(0)
      expect(items.length).toBeLessThan(50)
      const { calls } = yield* Effect.flatMap(CallTrace, (t) => t.recent(10))
      expect(calls[0]).toMatchObject({ action: "count", outcome: "failed", category: "transient" })
    }).pipe(Effect.provide(withTrace())),
  )

  it.effect("an unknown plugin id is a typed PluginNotFound naming the known ones", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(invokePlugin({ root, lock, plugin: "nope", action: "greet", input: {} }))
      expect(error).toBeInstanceOf(PluginNotFound)
      expect(error._tag === "PluginNotFound" && error.known).toContain("showcase")
    }).pipe(Effect.provide(PlinthLive)),
  )
})
