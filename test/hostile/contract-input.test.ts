import { existsSync, rmSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { HashingLive, PluginFilesLive, startInstance, TreeDigestVerifierLive } from "@plinth/runtime"
import { buildCli, plinth } from "../support/cli.js"
import { lockNow } from "../support/plugins.js"
import { appears, ContractLive, countingSpawner, once, pluginModule, tempRoot, writeReviewedPlugin } from "./support/contract.js"

/*
 * Inputs and configs are checked on the host against the reviewed manifest's
 * JSON Schemas before anything is sent or started. The plugin's own Effect
 * Schemas are laxer on purpose here (they ignore unknown keys; `narrow`
 * accepts any string), so a refusal can only come from the host, and a
 * handler that ran would leave a witness file.
 */

const root = tempRoot("input")
afterAll(() => rmSync(root, { recursive: true, force: true }))
const plugins = join(root, "plugins")
const dataRoot = join(root, "data")
const dataDir = join(dataRoot, "strict")

const source = pluginModule(
  `
  greet: action({ description: "greets", input: Schema.Struct({ name: Schema.String }), output: Schema.String,
    handler: ({ name }, { config, dataDir }) => Effect.sync(() => { writeFileSync(dataDir + "/greeted-" + String(name), "ran"); return config.greeting + ", " + name }) }),
  narrow: action({ description: "at most three characters, the manifest says", input: Short, output: Schema.String,
    handler: (text, { dataDir }) => Effect.sync(() => { writeFileSync(dataDir + "/narrow-ran", "ran"); return text }) }),
`,
  {
    prelude: `const Short = Schema.String.annotations({ jsonSchema: { type: "string", maxLength: 3 } })`,
    config: `Schema.Struct({ greeting: Schema.optionalWith(Schema.String, { default: () => "Hello" }) })`,
  },
)

const reviewed = once(writeReviewedPlugin(plugins, "strict", source, undefined, { permissions: { dataDir: true } }))

describe("hostile: input the reviewed manifest refuses", () => {
  it.scopedLive("is a PluginInputError with every invalid field, sorted, in one line; nothing reaches the worker", () =>
    Effect.gen(function* () {
      const { plugin, locked } = yield* reviewed
      // The generated schemas say what the host enforces.
      expect(plugin.manifest.actions?.["greet"]?.input).toMatchObject({ additionalProperties: false, required: ["name"] })
      expect(plugin.manifest.config).toMatchObject({ additionalProperties: false })

      const instance = yield* startInstance({ plugin, locked, dataRoot })
      expect(yield* instance.invoke("greet", { name: "Ada" })).toBe("Hello, Ada")
      expect(yield* Effect.promise(() => appears(join(dataDir, "greeted-Ada"), 2000))).toBe(true)

      const unknownKey = yield* Effect.flip(instance.invoke("greet", { name: "Eve", extra: 1 }))
      expect(unknownKey).toMatchObject({
        _tag: "PluginInputError",
        message: "invalid input for 'greet': extra: is not allowed here",
        fieldsInvalid: ["extra"],
      })

      const several = yield* Effect.flip(instance.invoke("greet", { name: 5, zeta: 1, alpha: true }))
      expect(several).toMatchObject({ _tag: "PluginInputError", fieldsInvalid: ["alpha", "name", "zeta"] })
      expect(several.message).toContain("name: must be string")
      expect(several.message).not.toContain("\n")
      expect(several.message).not.toContain("schemaPath")

      expect(yield* Effect.flip(instance.invoke("greet", {}))).toMatchObject({ fieldsInvalid: ["name"], message: "invalid input for 'greet': name: is missing" })
      expect(yield* Effect.flip(instance.invoke("greet", { name: 10n }))).toMatchObject({ _tag: "PluginInputError", fieldsInvalid: ["name"] })
      expect(yield* Effect.flip(instance.invoke("narrow", "toolong"))).toMatchObject({ _tag: "PluginInputError", fieldsInvalid: ["(root)"] })
      expect(yield* Effect.flip(instance.invoke("greet", "not an object"))).toMatchObject({ _tag: "PluginInputError", fieldsInvalid: ["(root)"] })

      yield* Effect.sleep("300 millis")
      expect(existsSync(join(dataDir, "greeted-Eve"))).toBe(false)
      expect(existsSync(join(dataDir, "greeted-5"))).toBe(false)
      expect(existsSync(join(dataDir, "narrow-ran"))).toBe(false)
      // The worker was never troubled: the same one answers.
      expect(yield* instance.invoke("narrow", "abc")).toBe("abc")
    }).pipe(Effect.provide(ContractLive)),
  )

  it.scopedLive("a config the manifest's schema refuses is a PluginInputError and no worker process is started", () => {
    const spawner = countingSpawner()
    return Effect.gen(function* () {
      const { plugin, locked } = yield* reviewed
      const wrongType = yield* Effect.flip(startInstance({ plugin, locked, dataRoot, config: { greeting: 5 } }))
      expect(wrongType).toMatchObject({ _tag: "PluginInputError", message: "invalid config: greeting: must be string", fieldsInvalid: ["greeting"] })
      const unknownKey = yield* Effect.flip(startInstance({ plugin, locked, dataRoot, config: { greeting: "Hi", colour: "red" } }))
      expect(unknownKey).toMatchObject({ _tag: "PluginInputError", message: "invalid config: colour: is not allowed here", fieldsInvalid: ["colour"] })
      expect(yield* Effect.flip(startInstance({ plugin, locked, dataRoot, config: [] }))).toMatchObject({ _tag: "PluginInputError", fieldsInvalid: ["(root)"] })
      expect(spawner.spawned()).toBe(0)

      const instance = yield* startInstance({ plugin, locked, dataRoot, config: { greeting: "Hi" } })
      expect(spawner.spawned()).toBe(1)
      expect(yield* instance.invoke("greet", { name: "Bo" })).toBe("Hi, Bo")
    }).pipe(Effect.provide(Layer.mergeAll(TreeDigestVerifierLive, spawner.layer).pipe(Layer.provideMerge(Layer.mergeAll(HashingLive, PluginFilesLive)))))
  })

  it.scopedLive("a manifest schema the validator cannot use refuses the start with a one-line SchemaViolation", () =>
    Effect.gen(function* () {
      const { plugin, locked } = yield* writeReviewedPlugin(root, "unusable", source, (manifest) => ({
        ...manifest,
        actions: { ...manifest.actions, greet: { ...manifest.actions!["greet"]!, input: { type: 5 } } },
      }))
      const failure = yield* Effect.flip(startInstance({ plugin, locked, drift: "ignore", dataRoot }))
      expect(failure).toMatchObject({ _tag: "SchemaViolation", plugin: "unusable" })
      expect(failure._tag === "SchemaViolation" && failure.detail).toMatch(/^plugin\.json: the input schema of 'greet' is not a usable JSON Schema: [^\n]+$/)
      // Schemas are read as draft-07, what JSONSchema.make writes; one naming another draft is refused, not misread.
      const otherDraft = { ...plugin, manifest: { ...plugin.manifest, config: { ...plugin.manifest.config, $schema: "https://json-schema.org/draft/2020-12/schema" } } }
      expect(yield* Effect.flip(startInstance({ plugin: otherDraft, locked, drift: "ignore", dataRoot }))).toMatchObject({
        _tag: "SchemaViolation",
        detail: `plugin.json: the config schema is not a usable JSON Schema: its $schema is "https://json-schema.org/draft/2020-12/schema", not draft-07`,
      })
    }).pipe(Effect.provide(ContractLive)),
  )

  describe("through the CLI", () => {
    beforeAll(async () => {
      buildCli()
      await Effect.runPromise(reviewed)
      await lockNow(plugins, join(root, "PLUGINS.lock"))
    })

    it("a refused --config or --input exits 5 naming the fields, before the call", async () => {
      const config = await plinth(root, ["plugins", "invoke", "strict", "greet", "--input", '{"name": "Cy"}', "--config", '{"colour": "red"}'])
      expect(config.code, config.stderr).toBe(5)
      expect(config.stderr).toContain("failed [PluginInputError]: invalid config: colour: is not allowed here")
      expect(config.stderr).toContain("invalid fields: colour")
      expect(config.stderr).not.toContain("WorkerStartFailed")

      const input = await plinth(root, ["plugins", "invoke", "strict", "greet", "--input", '{"name": "Cy", "extra": 1}', "--json"])
      expect(input.code).toBe(5)
      expect(JSON.parse(input.stdout)).toMatchObject({ ok: false, error: { _tag: "PluginInputError" }, job: { category: "input", fieldsInvalid: ["extra"] } })
      expect(existsSync(join(root, ".plinth/data/strict/greeted-Cy"))).toBe(false)
    })
  })
})
