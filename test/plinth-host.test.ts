import { randomUUID } from "node:crypto"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { Effect, Option, Redacted } from "effect"
import { ConfigStore, createManager, EmpiricalStore, PlinthHost, PluginManager, SecretStore, SecretStoreLive } from "@plinth/runtime"
import { examplesWorkspace } from "./support/cli.js"
import { tempDir } from "./support/plugins.js"
import { isAlive } from "./support/processes.js"

/*
 * The host surfaces of issue 8 §6, as a host uses them: one Layer
 * (PlinthHost) for verification, the manager and the stores, and the Promise
 * facade over it. Real worker processes, a real SQLite file in a fresh data
 * directory, a copy of the example plugins and their lock.
 */

const setSecret = (dataDir: string, plugin: string, name: string, value: string) =>
  Effect.runPromise(Effect.flatMap(SecretStore, (store) => store.set(plugin, name, Redacted.make(value))).pipe(Effect.provide(SecretStoreLive(dataDir))))

/** Every file under `dir` but the secret store, as bytes. */
const writtenOutsideSecrets = (dir: string) =>
  readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && !join(entry.parentPath, entry.name).startsWith(join(dir, "secrets")))
    .map((entry) => readFileSync(join(entry.parentPath, entry.name)))

describe("PlinthHost: one Layer for a host", () => {
  it("runs instances whose default config and enabled flag survive a restart over one data directory, with secrets delivered", async () => {
    const workspace = examplesWorkspace("plinth-host-")
    const dataDir = tempDir("plinth-host-data-")
    const host = () => PlinthHost({ root: join(workspace, "plugins"), lock: join(workspace, "PLUGINS.lock"), dataDir })
    const token = `host-test-${randomUUID()}`
    await setSecret(dataDir, "vault-demo", "VAULT_TOKEN", token)

    const first = await Effect.runPromise(
      Effect.gen(function* () {
        const manager = yield* PluginManager
        yield* manager.load("greeter", { config: { greeting: "Ahoy" } })
        const extra = yield* manager.load("greeter", { instanceId: "greeter-2", config: { greeting: "Hey" } })
        const both = [yield* manager.execute("greeter", "greet", { name: "Ada" }), yield* manager.execute("greeter-2", "greet", { name: "Ada" })]
        yield* manager.disable("greeter")
        yield* manager.load("vault-demo")
        const signed = (yield* manager.execute("vault-demo", "sign", { message: "m" })) as Record<string, unknown>
        const stored = yield* (yield* ConfigStore).get("greeter")
        const recordsOk = yield* Effect.either((yield* EmpiricalStore).list())
        const pids = (yield* manager.list).map((i) => i.pid!)
        return { both, extra, signed, stored, recordsOk, pids }
      }).pipe(Effect.provide(host())),
    )
    expect(first.both).toEqual(["Ahoy, Ada!", "Hey, Ada!"])
    expect(first.extra.id).toBe("greeter-2")
    expect(first.signed).toMatchObject({ label: "vault", message: "m", tokenLength: token.length })
    expect(first.signed.signature).toMatch(/^[0-9a-f]{8}$/)
    expect(Option.getOrThrow(first.stored)).toMatchObject({ plugin: "greeter", config: { greeting: "Ahoy" }, enabled: false })
    expect(first.recordsOk._tag).toBe("Right")
    expect(first.pids).toHaveLength(3)
    // Closing the layer stopped every worker.
    expect(first.pids.filter(isAlive)).toEqual([])
    expect(existsSync(join(dataDir, "plinth.db"))).toBe(true)

    const second = await Effect.runPromise(
      Effect.gen(function* () {
        const manager = yield* PluginManager
        const loaded = yield* manager.load("greeter")
        const refused = yield* Effect.flip(manager.execute("greeter", "greet", { name: "Ada" }))
        yield* manager.enable("greeter")
        const greeted = yield* manager.execute("greeter", "greet", { name: "Ada" })
        // Extra instances are not remembered: an id loaded again starts from the defaults.
        const extra = yield* manager.load("greeter", { instanceId: "greeter-2" })
        return { loaded, refused: refused._tag, greeted, extra: yield* manager.execute(extra.id, "greet", { name: "Ada" }) }
      }).pipe(Effect.provide(host())),
    )
    expect(second.loaded).toMatchObject({ config: { greeting: "Ahoy" }, enabled: false })
    expect(second.refused).toBe("PluginDisabled")
    expect(second.greeted).toBe("Ahoy, Ada!")
    expect(second.extra).toBe("Hello, Ada!")
    expect(writtenOutsideSecrets(dataDir).filter((bytes) => bytes.includes(token))).toEqual([])
  }, 60_000)

  it("fails to build with the verification's rejection (here: no lock), starting nothing", async () => {
    const workspace = examplesWorkspace("plinth-host-")
    const outcome = await Effect.runPromise(
      Effect.either(Effect.provide(PluginManager, PlinthHost({ root: join(workspace, "plugins"), lock: join(workspace, "missing.lock"), dataDir: tempDir() }))),
    )
    expect(outcome._tag).toBe("Left")
    expect(outcome._tag === "Left" && outcome.left._tag).toBe("LockFileMissing")
  })
})

describe("createManager: the PluginManager behind Promises", () => {
  it("loads, calls, streams, disables, enables, updates config, reloads, unloads, lists and closes; failures are values", async () => {
    const workspace = examplesWorkspace("plinth-facade-")
    const dataDir = tempDir("plinth-facade-data-")
    const options = { root: join(workspace, "plugins"), lock: join(workspace, "PLUGINS.lock"), dataDir }
    const started = await createManager(options)
    if (!started.ok) throw new Error(started.failure._tag)
    const { manager } = started
    expect(manager.plugins).toContain("showcase")

    const loaded = await manager.load("showcase", { config: { greeting: "Hi" } })
    expect(loaded.ok && loaded.instance.id).toBe("showcase")
    const other = await manager.load("showcase", { newInstance: true })
    if (!other.ok) throw new Error(other.failure._tag)
    expect(await manager.execute("showcase", "greet", { name: "Ada" })).toEqual({ ok: true, result: { text: "Hi, Ada!" } })

    const items: Array<unknown> = []
    for await (const item of manager.stream(other.instance.id, "count", { to: 3 })) items.push(item)
    expect(items).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }])

    const events = manager.events()[Symbol.asyncIterator]()
    expect(await manager.disable(other.instance.id)).toEqual({ ok: true })
    const refused = await manager.execute(other.instance.id, "greet", { name: "Ada" })
    expect(refused.ok).toBe(false)
    expect(!refused.ok && refused.failure._tag).toBe("PluginDisabled")
    expect(!refused.ok && refused.job).toMatchObject({ category: "input", retriable: false, tag: "PluginDisabled" })
    await expect(
      (async () => {
        for await (const _ of manager.stream(other.instance.id, "count", { to: 3 })) void _
      })(),
    ).rejects.toMatchObject({ _tag: "ManagerStreamFailed", failure: { _tag: "PluginDisabled" } })
    expect(await manager.enable(other.instance.id)).toEqual({ ok: true })
    const seen = [(await events.next()).value, (await events.next()).value]
    expect(seen).toMatchObject([
      { _tag: "disabled", instance: other.instance.id },
      { _tag: "enabled", instance: other.instance.id },
    ])
    await events.return?.()
    expect(await manager.execute(other.instance.id, "greet", { name: "Ada" })).toEqual({ ok: true, result: { text: "Hello, Ada!" } })

    const strict = await manager.updateConfig("showcase", { greeting: "Yo", nope: 1 })
    expect(!strict.ok && strict.failure).toMatchObject({ _tag: "ConfigInvalid", fieldsInvalid: ["nope"] })
    const updated = await manager.updateConfig("showcase", { greeting: "Yo", nope: 1 }, { strict: false })
    expect(updated.ok && updated.instance.config).toEqual({ greeting: "Yo" })
    expect(await manager.execute("showcase", "greet", { name: "Ada" })).toEqual({ ok: true, result: { text: "Yo, Ada!" } })

    const failed = await manager.execute("showcase", "fail", { category: "transient" })
    expect(!failed.ok && failed.job).toMatchObject({ category: "transient", retriable: true, plugin: "showcase" })
    const missing = await manager.execute("nope", "greet", {})
    expect(!missing.ok && missing.failure._tag).toBe("InstanceNotLoaded")

    const got = await manager.get("showcase")
    const fresh = await manager.reload("showcase")
    expect(fresh.ok && got.ok && fresh.instance.pid !== got.instance.pid, "reload starts a fresh worker").toBe(true)
    expect(await manager.unload(other.instance.id)).toEqual({ ok: true })
    const gone = await manager.execute(other.instance.id, "greet", { name: "Ada" })
    expect(!gone.ok && gone.failure._tag).toBe("InstanceNotLoaded")
    expect(!gone.ok && gone.job).toMatchObject({ category: "input", tag: "InstanceNotLoaded" })
    const unknown = await manager.load("nope")
    expect(!unknown.ok && unknown.failure._tag).toBe("PluginNotFound")

    const listed = await manager.list()
    expect(listed.map((i) => i.id)).toEqual(["showcase"])
    const pids = listed.map((i) => i.pid!)
    await manager.close()
    await manager.close()
    expect(pids.filter(isAlive)).toEqual([])

    // The default instance's config was persisted: a new manager over the same data directory starts with it.
    const again = await createManager(options)
    if (!again.ok) throw new Error(again.failure._tag)
    const reloaded = await again.manager.load("showcase")
    expect(reloaded.ok && reloaded.instance.config).toEqual({ greeting: "Yo" })
    await again.manager.close()
  }, 60_000)

  it("resolves with the failure when the plugins do not verify", async () => {
    const workspace = examplesWorkspace("plinth-facade-")
    const outcome = await createManager({ root: join(workspace, "plugins"), lock: join(workspace, "missing.lock"), dataDir: tempDir() })
    expect(outcome.ok).toBe(false)
    expect(!outcome.ok && outcome.failure._tag).toBe("LockFileMissing")
  })
})
