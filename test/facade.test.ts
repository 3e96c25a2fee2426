import { join } from "node:path"
import { readdirSync } from "node:fs"
import { describe, expect, it } from "vitest"
import { createPlinth, explainRejection } from "@plinth/runtime"
import { lockNow, witnessModule, workspace, writeFile, writePlugin } from "./support/plugins.js"

describe("the Promise facade", () => {
  it("loads verified plugins and exposes the registry", async () => {
    const ws = workspace()
    writePlugin(ws.root, { id: "hello", files: { "index.js": witnessModule(ws.witnesses, "hello") } })
    await lockNow(ws.root, ws.lock)
    const plinth = createPlinth()
    try {
      const outcome = await plinth.loadPlugins({ root: ws.root, lock: ws.lock })
      expect(outcome).toEqual({ ok: true, report: { loaded: ["hello"], totalWalked: 1 } })
      const plugins = await plinth.plugins()
      expect(plugins.map((p) => [p.id, (p.module as { default: { id: string } }).default.id])).toEqual([["hello", "hello"]])
      await plinth.reset()
      expect(await plinth.plugins()).toEqual([])
    } finally {
      await plinth.dispose()
    }
  })

  it("resolves a rejection as a typed value, not a thrown string", async () => {
    const ws = workspace()
    writePlugin(ws.root, { id: "hello", files: { "index.js": witnessModule(ws.witnesses, "hello") } })
    await lockNow(ws.root, ws.lock)
    writeFile(join(ws.root, "hello", "index.js"), "export default 'changed'\n")
    const plinth = createPlinth()
    try {
      const outcome = await plinth.loadPlugins({ root: ws.root, lock: ws.lock })
      if (outcome.ok) throw new Error("a tampered plugin was loaded")
      expect(outcome.rejection._tag).toBe("IntegrityMismatch")
      // What a host shows a person, from the package it already imports.
      if (outcome.rejection._tag === "DuplicatePlugin") throw new Error("a first load was refused as a duplicate")
      expect(explainRejection(outcome.rejection)).toContain("changed: index.js")
      expect(outcome.rejection).toMatchObject({ plugin: "hello", changed: ["index.js"], added: [], removed: [] })
      expect(await plinth.plugins()).toEqual([])
      expect(readdirSync(ws.witnesses)).toEqual([])
    } finally {
      await plinth.dispose()
    }
  })

  it("starts a plugin in a worker and returns call outcomes as typed values", async () => {
    const examples = join(import.meta.dirname, "../examples/plugins")
    const lock = join(import.meta.dirname, "../PLUGINS.lock")
    const plinth = createPlinth()
    try {
      const missing = await plinth.start({ root: examples, lock, plugin: "nope" })
      expect(missing.ok === false && missing.failure._tag).toBe("PluginNotFound")
      const started = await plinth.start({ root: examples, lock, plugin: "showcase", config: { greeting: "Hey" } })
      if (!started.ok) throw new Error(`start failed: ${started.failure._tag}`)
      const { instance } = started
      expect(await instance.invoke("greet", { name: "Ada" })).toEqual({ ok: true, result: { text: "Hey, Ada!" } })
      const failed = await instance.invoke("fail", { category: "transient" })
      if (failed.ok) throw new Error("the failing action succeeded")
      expect(failed.failure._tag).toBe("PluginTransientError")
      expect(failed.job).toMatchObject({ category: "transient", retriable: true, plugin: "showcase", instance: instance.id })
      const timedOut = await instance.invoke("slow", { millis: 5000 }, { timeout: "200 millis" })
      expect(timedOut.ok === false && timedOut.failure._tag).toBe("InvokeTimeout")
      await instance.stop()
      await instance.stop()
    } finally {
      await plinth.dispose()
    }
  })
})
