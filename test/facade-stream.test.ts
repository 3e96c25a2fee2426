import { readFileSync, rmSync } from "node:fs"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { createPlinth, StreamCallFailed } from "@plinth/runtime"
import { appears, pluginModule, tempRoot, writeReviewedPlugin } from "./hostile/support/contract.js"
import { lockNow } from "./support/plugins.js"

/*
 * The Promise facade's streams are async iterables over a real worker. A
 * plugin that ticks forever writes each tick and, when its stream is torn
 * down, a `stopped` file into its data folder: the host sees from outside the
 * worker that a loop left early stopped the stream there.
 */

const dir = tempRoot("facade-stream")
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const root = join(dir, "plugins")
const lock = join(dir, "PLUGINS.lock")
const dataRoot = join(dir, "data")

const source = pluginModule(`
  ticks: streaming({ description: "counts forever", input: Schema.Struct({}), output: Schema.Number,
    stream: (_, { dataDir }) => Stream.iterate(1, (n) => n + 1).pipe(
      Stream.tap((n) => Effect.zipRight(Effect.sleep(Duration.millis(5)), Effect.sync(() => writeFileSync(dataDir + "/last", String(n))))),
      Stream.ensuring(Effect.sync(() => writeFileSync(dataDir + "/stopped", "stopped"))),
    ) }),
`)

const examples = join(import.meta.dirname, "../examples/plugins")
const examplesLock = join(import.meta.dirname, "../PLUGINS.lock")

describe("the Promise facade's streams", () => {
  it("yield every item of a streaming action to for await, with progress", async () => {
    const plinth = createPlinth()
    try {
      const started = await plinth.start({ root: examples, lock: examplesLock, plugin: "showcase" })
      if (!started.ok) throw new Error(`start failed: ${started.failure._tag}`)
      const items: Array<unknown> = []
      const progress: Array<string | undefined> = []
      for await (const item of started.instance.stream("count", { to: 4 }, { onProgress: (report) => progress.push(report.message) })) {
        items.push(item)
      }
      expect(items).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }])
      expect(progress).toContain("4 of 4")
    } finally {
      await plinth.dispose()
    }
  })

  it("throw StreamCallFailed, with the typed failure and its summary, when the call fails", async () => {
    const plinth = createPlinth()
    try {
      const started = await plinth.start({ root: examples, lock: examplesLock, plugin: "showcase" })
      if (!started.ok) throw new Error(`start failed: ${started.failure._tag}`)
      const loop = async () => {
        for await (const _ of started.instance.stream("count", { to: 0 })) throw new Error("an item arrived for refused input")
      }
      const thrown = await loop().then(
        () => undefined,
        (error: unknown) => error,
      )
      expect(thrown).toBeInstanceOf(StreamCallFailed)
      const failed = thrown as StreamCallFailed
      expect(failed.failure._tag).toBe("PluginInputError")
      expect(failed.job).toMatchObject({ category: "input", retriable: false, plugin: "showcase" })
      expect(failed.message).toContain("count")
    } finally {
      await plinth.dispose()
    }
  })

  it("cancel the call in the worker when the loop breaks off early", async () => {
    await Effect.runPromise(writeReviewedPlugin(root, "ticker", source, undefined, { permissions: { dataDir: true } }))
    await lockNow(root, lock)
    const dataDir = join(dataRoot, "ticker")
    const plinth = createPlinth()
    try {
      const started = await plinth.start({ root, lock, plugin: "ticker", dataRoot })
      if (!started.ok) throw new Error(`start failed: ${started.failure._tag}`)
      const seen: Array<unknown> = []
      for await (const n of started.instance.stream("ticks", {})) {
        seen.push(n)
        if (seen.length === 3) break
      }
      expect(seen).toEqual([1, 2, 3])
      // The stream only ends when torn down: its finalizer ran in the worker, which is still up.
      expect(await appears(join(dataDir, "stopped"), 10_000)).toBe(true)
      const last = readFileSync(join(dataDir, "last"), "utf8")
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(readFileSync(join(dataDir, "last"), "utf8")).toBe(last)
      // The same worker answers the next call.
      const again: Array<unknown> = []
      for await (const n of started.instance.stream("ticks", {})) {
        again.push(n)
        if (again.length === 2) break
      }
      expect(again).toEqual([1, 2])
    } finally {
      await plinth.dispose()
    }
  })
})
