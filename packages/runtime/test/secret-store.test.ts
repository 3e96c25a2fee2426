import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { Effect, Layer, Redacted } from "effect"
import { startInstance } from "../src/instance/Instance.js"
import { ProcessSpawner, spawnWorkerProcess, type SpawnRequest } from "../src/instance/ProcessSpawner.js"
import { SecretStore, SecretStoreLive, SecretStoreMemory } from "../src/stores/SecretStore.js"
import { described, lockOf, makeTempDir, pluginSource, removeDir, WorkerTestLive, writePlugin } from "./workerFixtures.js"

const root = makeTempDir("secrets")
afterAll(() => removeDir(root))

const mode = (path: string) => statSync(path).mode & 0o777

const run = <A, E>(effect: Effect.Effect<A, E, SecretStore>, layer: Layer.Layer<SecretStore>) => Effect.runPromise(Effect.provide(effect, layer))

describe.each([
  ["files", () => SecretStoreLive(makeTempDir("secret-store"))],
  ["memory", () => SecretStoreMemory()],
] as const)("SecretStore (%s)", (_kind, layerOf) => {
  it("keeps each plugin's secrets apart, hands them out Redacted, lists names only and forgets a removed one", async () => {
    const result = await run(
      Effect.gen(function* () {
        const store = yield* SecretStore
        yield* store.set("alpha", "TOKEN", Redacted.make("alpha-token"))
        yield* store.set("alpha", "OTHER", Redacted.make("alpha-other"))
        yield* store.set("beta", "TOKEN", Redacted.make("beta-token"))
        yield* store.set("alpha", "TOKEN", Redacted.make("alpha-token-2"))
        const alpha = yield* store.get("alpha", ["TOKEN", "MISSING"])
        const beta = yield* store.get("beta", ["TOKEN", "OTHER"])
        const listed = yield* store.list()
        const removed = yield* store.remove("alpha", "TOKEN")
        const again = yield* store.remove("alpha", "TOKEN")
        const afterRemove = yield* store.list("alpha")
        return { alpha, beta, listed, removed, again, afterRemove }
      }),
      layerOf(),
    )
    expect([...result.alpha.keys()]).toEqual(["TOKEN"])
    expect(Redacted.value(result.alpha.get("TOKEN")!)).toBe("alpha-token-2")
    expect(String(result.alpha.get("TOKEN"))).toBe("<redacted>")
    expect(JSON.stringify([...result.alpha.values()])).not.toContain("alpha-token")
    expect([...result.beta.keys()]).toEqual(["TOKEN"])
    expect(Redacted.value(result.beta.get("TOKEN")!)).toBe("beta-token")
    expect(result.listed).toEqual([
      { plugin: "alpha", names: ["OTHER", "TOKEN"] },
      { plugin: "beta", names: ["TOKEN"] },
    ])
    expect(result.removed).toBe(true)
    expect(result.again).toBe(false)
    expect(result.afterRemove).toEqual([{ plugin: "alpha", names: ["OTHER"] }])
  })

  it("refuses plugin ids and names that are not valid, before reading or writing", async () => {
    for (const [plugin, name] of [["../etc", "TOKEN"], ["Alpha", "TOKEN"], ["alpha", "token"], ["alpha", "1TOKEN"], ["alpha", "A".repeat(65)], ["alpha", "__proto__"]]) {
      const failure = await run(Effect.flip(Effect.flatMap(SecretStore, (s) => s.set(plugin!, name!, Redacted.make("v")))), layerOf())
      expect(failure._tag).toBe("SecretNameInvalid")
      expect(failure.message).not.toContain("v\"")
    }
  })
})

describe("SecretStoreLive on disk", () => {
  it("keeps one owner-only file per plugin in an owner-only folder, written whole, and removes a plugin's file with its last secret", async () => {
    const dataDir = makeTempDir("secret-files")
    const layer = SecretStoreLive(dataDir)
    await run(
      Effect.flatMap(SecretStore, (store) =>
        Effect.all([store.set("alpha", "TOKEN", Redacted.make("t")), store.set("beta", "KEY", Redacted.make("k"))], { concurrency: "unbounded" }),
      ),
      layer,
    )
    const folder = join(dataDir, "secrets")
    expect(mode(folder)).toBe(0o700)
    expect(readdirSync(folder).sort()).toEqual(["alpha.json", "beta.json"])
    expect(mode(join(folder, "alpha.json"))).toBe(0o600)
    expect(JSON.parse(readFileSync(join(folder, "alpha.json"), "utf8"))).toEqual({ version: 1, secrets: { TOKEN: "t" } })
    // A fresh store over the same folder reads what the first wrote.
    const read = await run(Effect.flatMap(SecretStore, (store) => store.get("alpha", ["TOKEN"])), SecretStoreLive(dataDir))
    expect(Redacted.value(read.get("TOKEN")!)).toBe("t")
    await run(Effect.flatMap(SecretStore, (store) => store.remove("alpha", "TOKEN")), layer)
    expect(existsSync(join(folder, "alpha.json"))).toBe(false)
    expect(readdirSync(folder)).toEqual(["beta.json"])
  })

  it("reports a damaged file without quoting it", async () => {
    const dataDir = makeTempDir("secret-damaged")
    await run(Effect.flatMap(SecretStore, (store) => store.set("alpha", "TOKEN", Redacted.make("t"))), SecretStoreLive(dataDir))
    writeFileSync(join(dataDir, "secrets", "alpha.json"), '{"version": 1, "secrets": {"TOKEN": "damaged-marker-value", "bad name": 3}}')
    const failure = await run(Effect.flip(Effect.flatMap(SecretStore, (store) => store.get("alpha", ["TOKEN"]))), SecretStoreLive(dataDir))
    expect(failure._tag).toBe("SecretStoreUnavailable")
    expect(failure.message).not.toContain("damaged-marker-value")
  })
})

const secretActions = `
  peek: action({ description: "what the handler sees of its secrets", input: Schema.Struct({}),
    output: Schema.Struct({ names: Schema.Array(Schema.String), length: Schema.Number, shown: Schema.String, optional: Schema.Boolean, undeclared: Schema.Boolean }),
    handler: (_, { secrets }) => Effect.sync(() => {
      const token = Option.getOrThrow(secrets.get("API_TOKEN"))
      return { names: [...secrets.names], length: Redacted.value(token).length, shown: String(token) + JSON.stringify({ token }),
        optional: Option.isSome(secrets.get("OPTIONAL_KEY")), undeclared: Option.isSome(secrets.get("UNDECLARED")) }
    }) }),`

const secretsManifest = {
  secrets: [
    { name: "API_TOKEN", required: true, description: "the token" },
    { name: "OPTIONAL_KEY", required: false },
  ],
}

/** A spawner that counts the processes it starts and keeps what each was started with. */
const countingSpawner = () => {
  const counter = { spawned: 0, requests: [] as Array<SpawnRequest> }
  const layer = Layer.succeed(ProcessSpawner, {
    spawn: (request) =>
      Effect.sync(() => {
        counter.spawned++
        counter.requests.push(request)
        return spawnWorkerProcess(request)
      }),
  })
  return { counter, layer }
}

describe("secret delivery at start", () => {
  const plugin = Effect.runPromise(
    described(writePlugin(root, "vault", { "index.js": pluginSource(secretActions, `import { Option, Redacted } from "effect"`) }, secretsManifest as never)),
  )

  it("hands the worker only its declared secrets, Redacted, through the action context, never through argv or the environment", async () => {
    const vault = await plugin
    const { counter, layer } = countingSpawner()
    const result = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const instance = yield* startInstance({ plugin: vault, locked: yield* lockOf(vault) })
          return yield* instance.invoke("peek", {})
        }),
      ).pipe(
        Effect.provide(Layer.merge(WorkerTestLive, layer)),
        Effect.provide(SecretStoreMemory({ vault: { API_TOKEN: "sekrit-0123", UNDECLARED: "nope" }, other: { OPTIONAL_KEY: "not-yours" } })),
      ),
    )
    expect(result).toEqual({ names: ["API_TOKEN"], length: 11, shown: '<redacted>{"token":"<redacted>"}', optional: false, undeclared: false })
    expect(counter.spawned).toBe(1)
    expect(JSON.stringify(counter.requests)).not.toContain("sekrit")
  })

  it("refuses the start with MissingSecret, naming every required secret not set, before any process starts", async () => {
    const vault = await plugin
    const { counter, layer } = countingSpawner()
    const failure = await Effect.runPromise(
      Effect.scoped(Effect.flip(Effect.flatMap(lockOf(vault), (locked) => startInstance({ plugin: vault, locked })))).pipe(
        Effect.provide(Layer.merge(WorkerTestLive, layer)),
        Effect.provide(SecretStoreMemory({ vault: { OPTIONAL_KEY: "set" } })),
      ),
    )
    expect(failure).toMatchObject({ _tag: "MissingSecret", plugin: "vault", names: ["API_TOKEN"] })
    expect(counter.spawned).toBe(0)
    // Without a secret store in the context, nothing is set.
    const withoutStore = await Effect.runPromise(
      Effect.scoped(Effect.flip(Effect.flatMap(lockOf(vault), (locked) => startInstance({ plugin: vault, locked })))).pipe(
        Effect.provide(Layer.merge(WorkerTestLive, layer)),
      ),
    )
    expect(withoutStore).toMatchObject({ _tag: "MissingSecret", names: ["API_TOKEN"] })
    expect(counter.spawned).toBe(0)
  })
})

describe("a plugin that fails to load with its secrets delivered", () => {
  it("fails the start without the value in the error or the worker's stderr shown with it", async () => {
    const broken = writePlugin(
      root,
      "broken",
      { "index.js": `process.stderr.write("loading with " + process.argv.join(" ") + "\\n"); throw new Error("broken at load")\n` },
      secretsManifest as never,
    )
    const failure = await Effect.runPromise(
      Effect.scoped(Effect.flip(Effect.flatMap(lockOf(broken), (locked) => startInstance({ plugin: broken, locked, drift: "ignore" })))).pipe(
        Effect.provide(WorkerTestLive),
        Effect.provide(SecretStoreMemory({ broken: { API_TOKEN: "sekrit-load-4567" } })),
      ),
    )
    expect(failure.message).toContain("broken at load")
    expect(JSON.stringify(failure)).toContain("loading with")
    expect(JSON.stringify(failure) + failure.message).not.toContain("sekrit")
  })
})
