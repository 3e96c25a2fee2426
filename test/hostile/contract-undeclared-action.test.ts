import { existsSync, rmSync } from "node:fs"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { describePlugin, startInstance } from "@plinth/runtime"
import { appears, ContractLive, once, pluginModule, tempRoot, writeReviewedPlugin } from "./support/contract.js"
import { tiers } from "./support/isolation.js"

/*
 * Attack: plugin code defines an action its reviewed manifest does not list
 * and the worker declares it when it loads. The manifest is the contract: the
 * host refuses the call before anything is sent, so the handler never runs.
 */

const root = tempRoot("undeclared")
afterAll(() => rmSync(root, { recursive: true, force: true }))
const dataRoot = join(root, "data")

const source = pluginModule(`
  mark: action({ description: "leaves a mark", input: Schema.Struct({}), output: Schema.String,
    handler: (_, { dataDir }) => Effect.sync(() => { writeFileSync(dataDir + "/marked", "ran"); return "marked" }) }),
  count: streaming({ description: "counts", input: Schema.Struct({}), output: Schema.Number, stream: () => Stream.make(1, 2, 3) }),
  secret: action({ description: "not reviewed", input: Schema.Struct({}), output: Schema.String,
    handler: (_, { dataDir }) => Effect.sync(() => { writeFileSync(dataDir + "/secret-ran", "ran"); return "owned" }) }),
  secretStream: streaming({ description: "not reviewed", input: Schema.Struct({}), output: Schema.String,
    stream: (_, { dataDir }) => Stream.fromEffect(Effect.sync(() => { writeFileSync(dataDir + "/secret-stream-ran", "ran"); return "owned" })) }),
`)

/** The reviewer approved `mark` and `count`; the code also has `secret` and `secretStream`. */
const reviewed = once(writeReviewedPlugin(
  root,
  "undeclared",
  source,
  (manifest) => {
    const { secret: _secret, secretStream: _secretStream, ...approved } = manifest.actions ?? {}
    return { ...manifest, actions: approved }
  },
  { permissions: { dataDir: true } },
))

// Both isolation tiers: the gate is the host's, whatever sandbox the worker runs in.
describe.each(tiers)("hostile: an action the reviewed manifest does not declare (%s tier)", (tier) => {
  it.scopedLive("is refused on the host with ActionNotFound and never reaches the worker, even when the worker declares it", () =>
    Effect.gen(function* () {
      const { plugin, locked } = yield* reviewed
      const dataDir = join(dataRoot, plugin.id)
      // The worker's claim includes the unreviewed actions.
      const claimed = yield* describePlugin({ plugin, locked, dataRoot, isolation: tier })
      expect(Object.keys(claimed.actions).sort()).toEqual(["count", "mark", "secret", "secretStream"])
      expect(Object.keys(plugin.manifest.actions ?? {}).sort()).toEqual(["count", "mark"])

      // Started past the drift check, the worker can run `secret` if asked.
      const instance = yield* startInstance({ plugin, locked, drift: "ignore", dataRoot, isolation: tier })
      expect(Object.keys(instance.actions).sort()).toEqual(["count", "mark"])
      expect(yield* Effect.flip(instance.invoke("secret", {}))).toMatchObject({ _tag: "ActionNotFound", plugin: "undeclared", action: "secret" })
      expect(yield* Effect.flip(Stream.runCollect(instance.stream("secretStream", {})))).toMatchObject({
        _tag: "ActionNotFound",
        action: "secretStream",
      })
      // Names Object.prototype carries are not actions either.
      for (const name of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
        expect(yield* Effect.flip(instance.invoke(name, {}))).toMatchObject({ _tag: "ActionNotFound", action: name })
      }

      // The witness mechanism works: a declared action's mark appears...
      expect(yield* instance.invoke("mark", {})).toBe("marked")
      expect(yield* Effect.promise(() => appears(join(dataDir, "marked"), 2000))).toBe(true)
      // ...and the refused ones never ran.
      yield* Effect.sleep("300 millis")
      expect(existsSync(join(dataDir, "secret-ran"))).toBe(false)
      expect(existsSync(join(dataDir, "secret-stream-ran"))).toBe(false)
    }).pipe(Effect.provide(ContractLive)),
  )

  it.scopedLive("the kind of call is the manifest's: a unary call to a streaming action (and the reverse) is an input error", () =>
    Effect.gen(function* () {
      const { plugin, locked } = yield* reviewed
      const instance = yield* startInstance({ plugin, locked, drift: "ignore", dataRoot, isolation: tier })
      expect(yield* Effect.flip(instance.invoke("count", {}))).toMatchObject({ _tag: "PluginInputError", message: "'count' is a streaming action" })
      expect(yield* Effect.flip(Stream.runCollect(instance.stream("mark", {})))).toMatchObject({
        _tag: "PluginInputError",
        message: "'mark' is not a streaming action",
      })
      expect([...(yield* Stream.runCollect(instance.stream("count", {})))]).toEqual([1, 2, 3])
    }).pipe(Effect.provide(ContractLive)),
  )

  it.scopedLive("with the drift check on (the default) such a plugin does not even start: the early, helpful error", () =>
    Effect.gen(function* () {
      const { plugin, locked } = yield* reviewed
      const failure = yield* Effect.flip(startInstance({ plugin, locked, dataRoot, isolation: tier }))
      expect(failure).toMatchObject({ _tag: "DeclarationDrift" })
      expect(failure._tag === "DeclarationDrift" && failure.differences).toEqual([
        "action 'secret' is defined by the plugin but missing from the manifest",
        "action 'secretStream' is defined by the plugin but missing from the manifest",
      ])
    }).pipe(Effect.provide(ContractLive)),
  )
})
