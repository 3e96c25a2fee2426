import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { createPlinth } from "@plinth/runtime"
import { lockNow, witnessModule, workspace, writeFile, writePlugin } from "./support/plugins.js"

// A host that logs `rejection.message` shows people a sentence, not a dump of fields or a schema tree.
describe("the Promise facade's rejections carry readable messages", () => {
  it("no lock, a bad manifest, a changed file: each message says what is wrong and where", async () => {
    const ws = workspace()
    writePlugin(ws.root, { id: "hello", files: { "index.js": witnessModule(ws.witnesses, "hello") } })
    const plinth = createPlinth()
    try {
      const missing = await plinth.loadPlugins({ root: ws.root, lock: ws.lock })
      expect(!missing.ok && missing.rejection.message).toBe(
        `no lock file at ${ws.lock}; create one with: plinth plugins lock --root ${ws.root} --lock ${ws.lock}`,
      )

      await lockNow(ws.root, ws.lock)
      writeFile(join(ws.root, "hello", "index.js"), "export default 'changed'\n")
      const changed = await plinth.loadPlugins({ root: ws.root, lock: ws.lock })
      expect(!changed.ok && changed.rejection.message.split("\n")[0]).toBe(
        `plugin 'hello' does not match ${ws.lock}: its files changed since they were locked`,
      )

      writePlugin(ws.root, { id: "hello", manifest: { version: "0.1" }, files: { "index.js": witnessModule(ws.witnesses, "hello") } })
      const bad = await plinth.loadPlugins({ root: ws.root, lock: ws.lock })
      expect(!bad.ok && bad.rejection.message).toBe(
        `plugin 'hello' breaks the plugin format: plugin.json: version: expected a semantic version like 1.2.3, got "0.1"`,
      )
    } finally {
      await plinth.dispose()
    }
  })
})
