import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { IntegrityMismatch, type LockEntry } from "@plinth/domain"
import { HashingLive } from "../src/hashing/Hashing.js"
import { PluginFilesLive } from "../src/loading/PluginFiles.js"
import { PluginVerifier, TreeDigestVerifierLive, type InMemoryFile } from "../src/loading/PluginVerifier.js"
import { ProcessSpawner, ProcessSpawnerLive } from "../src/instance/ProcessSpawner.js"
import { startInstance } from "../src/instance/Instance.js"
import { readVerifiedFiles } from "../src/loading/VerifiedFiles.js"
import { described, lockOf, makeTempDir, pluginSource, removeDir, writePlugin } from "./workerFixtures.js"

const root = makeTempDir("verifier-seam")
afterAll(() => removeDir(root))

const echo = `echo: action({ description: "", input: Schema.Struct({ n: Schema.Number }), output: Schema.Number, handler: ({ n }) => Effect.succeed(n) }),`

/** The real spawner, counting the worker processes it starts. */
const countingSpawner = () => {
  let spawned = 0
  const layer = Layer.effect(
    ProcessSpawner,
    Effect.map(ProcessSpawner, (live) => ProcessSpawner.of({ spawn: (request) => Effect.suspend(() => (spawned++, live.spawn(request))) })),
  ).pipe(Layer.provide(ProcessSpawnerLive))
  return { layer, spawned: () => spawned }
}

const files = Layer.mergeAll(HashingLive, PluginFilesLive)

/** A verifier standing for a signature check: it refuses every in-memory file set, and records what it was shown. */
const refusingVerifier = (seen: Array<ReadonlyArray<InMemoryFile>>) =>
  Layer.succeed(PluginVerifier, {
    verify: () => Effect.void,
    verifyFiles: (plugin, shown, locked) =>
      Effect.suspend(() => {
        seen.push(shown)
        return Effect.fail(new IntegrityMismatch({ plugin: plugin.id, expected: locked.digest, actual: locked.digest, added: [], removed: [], changed: ["signature"] }))
      }),
  })

describe("instance start goes through the PluginVerifier seam", () => {
  it.scopedLive("a substituted verifier that refuses stops startInstance before any worker process starts", () =>
    Effect.gen(function* () {
      const plugin = writePlugin(root, "refused", { "index.js": pluginSource(echo) })
      const locked = yield* lockOf(plugin)
      const seen: Array<ReadonlyArray<InMemoryFile>> = []
      const spawner = countingSpawner()
      const error = yield* Effect.flip(
        startInstance({ plugin, locked, drift: "ignore" }).pipe(Effect.provide(Layer.mergeAll(refusingVerifier(seen), spawner.layer, files))),
      )
      expect(error).toMatchObject({ _tag: "IntegrityMismatch", plugin: "refused", changed: ["signature"] })
      expect(spawner.spawned()).toBe(0)
      // The verifier was shown the very bytes a worker would have run.
      expect(seen).toHaveLength(1)
      expect(seen[0]!.map((f) => f.path)).toEqual(["index.js", "plugin.json"])
      expect(Buffer.from(seen[0]!.find((f) => f.path === "index.js")!.bytes).toString()).toBe(pluginSource(echo))
    }),
  )

  it.scopedLive("with the default verifier the same plugin starts and answers (the count sees real spawns)", () =>
    Effect.gen(function* () {
      const plugin = yield* described(writePlugin(root, "accepted", { "index.js": pluginSource(echo) }))
      const locked = yield* lockOf(plugin)
      const spawner = countingSpawner()
      const live = Layer.mergeAll(TreeDigestVerifierLive, spawner.layer).pipe(Layer.provideMerge(files))
      const instance = yield* startInstance({ plugin, locked, drift: "ignore" }).pipe(Effect.provide(live))
      expect(yield* instance.invoke("echo", { n: 7 })).toBe(7)
      expect(spawner.spawned()).toBe(1)
    }),
  )

  it.effect("the default verifier refuses in-memory bytes that differ from the lock, naming the file", () =>
    Effect.gen(function* () {
      const plugin = writePlugin(root, "tampered", { "index.js": "export default 1\n", "data.txt": "reviewed" })
      const locked: LockEntry = yield* lockOf(plugin)
      writeFileSync(join(plugin.dir, "data.txt"), "swapped")
      const error = yield* Effect.flip(readVerifiedFiles(plugin, locked))
      expect(error).toMatchObject({ _tag: "IntegrityMismatch", changed: ["data.txt"], added: [], removed: [] })
    }).pipe(Effect.provide(Layer.mergeAll(TreeDigestVerifierLive).pipe(Layer.provideMerge(files)))),
  )
})
