import { afterAll, describe, expect, it } from "@effect/vitest"
import { rmSync } from "node:fs"
import { Effect } from "effect"
import { startInstance } from "@plinth/runtime"
import { tempDir } from "../support/plugins.js"
import { hostilePlugin, IsolationTestLive, isAlive, tiers } from "./support/isolation.js"

const root = tempDir("plinth-hostile-signals-")
afterAll(() => rmSync(root, { recursive: true, force: true }))

const attacks = `
  killParent: action({ description: "", input: Schema.Struct({}), output: Schema.String, handler: () => Effect.sync(() => { process.kill(process.ppid, "SIGKILL"); return "sent" }) }),
  rawKillParent: action({ description: "", input: Schema.Struct({}), output: Schema.String, handler: () => Effect.sync(() => { process._kill(process.ppid, 9); return "sent" }) }),
  killGroup: action({ description: "", input: Schema.Struct({}), output: Schema.String, handler: () => Effect.sync(() => { process.kill(0, "SIGTERM"); return "sent" }) }),
  killHost: action({ description: "", input: Schema.Struct({ pid: Schema.Number }), output: Schema.String, handler: ({ pid }) => Effect.sync(() => { process.kill(pid, "SIGKILL"); return "sent" }) }),
  debugHost: action({ description: "", input: Schema.Struct({ pid: Schema.Number }), output: Schema.String, handler: ({ pid }) => Effect.sync(() => { process._debugProcess(pid); return "sent" }) }),
  reniceHost: action({ description: "", input: Schema.Struct({ pid: Schema.Number }), output: Schema.String, handler: ({ pid }) => Effect.sync(() => { os.setPriority(pid, 19); return "sent" }) }),
  restore: action({ description: "", input: Schema.Struct({}), output: Schema.String, handler: () => Effect.sync(() => { try { process.kill = (pid) => pid } catch (e) { return "locked: " + e.name } return "replaced" }) }),
  binding: action({ description: "", input: Schema.Struct({}), output: Schema.String, handler: () => Effect.sync(() => { process.binding("process_methods"); return "reached" }) }),
  self: action({ description: "", input: Schema.Struct({}), output: Schema.Boolean, handler: () => Effect.sync(() => process.kill(process.pid, 0)) }),
`

describe.each(tiers)("isolation tier %s: plugin code cannot signal its host", (tier) => {
  it.scopedLive("kill, _kill, kill(0), _debugProcess and setPriority against other processes are SandboxDenied 'signal'; the host lives on", () =>
    Effect.gen(function* () {
      const { plugin, locked } = yield* hostilePlugin(root, `signals-${tier}`, { actions: attacks, prelude: `import os from "node:os"` })
      const instance = yield* startInstance({ plugin, locked, drift: "ignore", isolation: tier })
      expect(instance.isolation).toBe(tier)
      const denied = { _tag: "SandboxDenied", permission: "signal" }
      expect(yield* Effect.flip(instance.invoke("killParent", {}))).toMatchObject(denied)
      expect(yield* Effect.flip(instance.invoke("rawKillParent", {}))).toMatchObject(denied)
      expect(yield* Effect.flip(instance.invoke("killGroup", {}))).toMatchObject(denied)
      // The host's real pid, handed in: in the OS tier it is not even in the worker's pid namespace.
      expect(yield* Effect.flip(instance.invoke("killHost", { pid: process.pid }))).toMatchObject(denied)
      // SIGUSR1 would open the host's inspector: code execution in the host for anything reaching 127.0.0.1.
      expect(yield* Effect.flip(instance.invoke("debugHost", { pid: process.pid }))).toMatchObject(denied)
      expect(yield* Effect.flip(instance.invoke("reniceHost", { pid: process.pid }))).toMatchObject(denied)
      // The guards cannot be swapped back, and the raw bindings are out of reach.
      expect(yield* instance.invoke("restore", {})).toMatch(/^locked: TypeError/)
      expect(yield* Effect.flip(instance.invoke("killParent", {}))).toMatchObject(denied)
      expect(yield* Effect.flip(instance.invoke("binding", {}))).toMatchObject({ _tag: "SandboxDenied" })
      // Signalling itself stays possible, and the worker is still the same.
      expect(yield* instance.invoke("self", {})).toBe(true)
      expect(isAlive(process.pid)).toBe(true)
      expect(isAlive((yield* instance.pid)!)).toBe(true)
    }).pipe(Effect.provide(IsolationTestLive)),
  )
})
