import { randomBytes } from "node:crypto"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { Effect, Queue, Redacted } from "effect"
import { describeLocalPlugin, lockPlugins, PlinthHost, PlinthLive, PluginManager, SecretStore, SecretStoreLive } from "@plinth/runtime"
import { tempDir, writePlugin } from "./support/plugins.js"
import { vaultSource } from "./support/secrets.js"

/*
 * Secrets under the PluginManager (issue 8 §5): a plugin that uses its secret,
 * fails holding it (until its breaker opens), throws it and logs it; then
 * everything the run produced — the manager's events, every failure, the call
 * trace, the database and the rest of the data directory — is searched for the value.
 */
describe("secrets under the PluginManager", () => {
  it("never reach its events, failures, trace or stores", async () => {
    const token = `mk${randomBytes(8).toString("hex")}-token-value`
    const dir = tempDir("plinth-secrets-manager-")
    const root = join(dir, "plugins")
    const lock = join(dir, "PLUGINS.lock")
    const dataDir = join(dir, "data")
    writePlugin(root, { id: "vault", manifest: { secrets: [{ name: "API_TOKEN", required: true, description: "The upstream API token." }] }, files: { "index.js": vaultSource } })
    // As its author would: describe --write, review, lock.
    await Effect.runPromise(
      Effect.zipRight(describeLocalPlugin({ root, id: "vault", write: true }), lockPlugins({ root, lock, check: false })).pipe(Effect.provide(PlinthLive)),
    )
    await Effect.runPromise(Effect.flatMap(SecretStore, (store) => store.set("vault", "API_TOKEN", Redacted.make(token))).pipe(Effect.provide(SecretStoreLive(dataDir))))

    const seen = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const manager = yield* PluginManager
          const events = yield* manager.subscribe
          yield* manager.load("vault")
          const digest = yield* manager.execute("vault", "digest", {})
          // Five failures in a row open the breaker; its event carries the last failure's message.
          const failures: Array<unknown> = []
          for (let i = 0; i < 5; i++) failures.push(yield* Effect.flip(manager.execute("vault", "fail", {})))
          yield* manager.reset("vault")
          failures.push(yield* Effect.flip(manager.execute("vault", "crash", {})))
          const logged = yield* manager.execute("vault", "log", {})
          const stats = yield* manager.stats("vault")
          return { digest, failures, logged, stats, events: [...(yield* Queue.takeAll(events))] }
        }),
      ).pipe(Effect.provide(PlinthHost({ root, lock, dataDir, breakerThreshold: 5 }))),
    )
    expect(seen.digest).toMatchObject({ length: token.length, names: ["API_TOKEN"] })
    expect(seen.events.map((e) => e._tag)).toContain("breakerOpened")
    expect(seen.failures).toHaveLength(6)
    // Plugin code may hand its own secret out in a result; Redacted keeps it from doing so by accident.
    expect(seen.logged).toBe("logged <redacted>")

    const everything = [
      JSON.stringify(seen.events),
      ...seen.failures.map((f) => `${String(f)} ${JSON.stringify(f)} ${(f as Error).message}`),
      JSON.stringify(seen.stats),
      ...readdirSync(dataDir, { recursive: true, withFileTypes: true })
        .filter((entry) => entry.isFile() && !join(entry.parentPath ?? entry.path, entry.name).startsWith(join(dataDir, "secrets")))
        .map((entry) => readFileSync(join(entry.parentPath ?? entry.path, entry.name), "latin1")),
    ]
    expect(everything.filter((text) => text.includes(token))).toEqual([])
  }, 120_000)
})
