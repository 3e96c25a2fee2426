import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { startInstance } from "../src/instance/Instance.js"
import { described, lockOf, makeTempDir, pluginSource, removeDir, WorkerTestLive, writePlugin } from "./workerFixtures.js"

const root = makeTempDir("worker-messages")
afterAll(() => removeDir(root))

// Refinements without a JSON Schema annotation pass the host's JSON Schema check, so the worker's own decoding speaks.
const actions = `
  greet: action({ description: "", input: Schema.Struct({ name: Schema.String.pipe(Schema.filter((s) => s.startsWith("a") || "must start with 'a'")) }),
    output: Schema.String, handler: ({ name }) => Effect.succeed(name) }),
  short: action({ description: "", input: Schema.Struct({}), output: Schema.String.pipe(Schema.minLength(3)), handler: () => Effect.succeed("ab") }),`

describe("schema failures inside the worker read as one line per problem", () => {
  it.scopedLive("invalid input and output that breaks its schema: the path, what was expected, what was found", () =>
    Effect.gen(function* () {
      const plugin = yield* described(writePlugin(root, "worded", { "index.js": pluginSource(actions) }))
      const instance = yield* startInstance({ plugin, locked: yield* lockOf(plugin), drift: "ignore" })
      const input = yield* Effect.flip(instance.invoke("greet", { name: "bob" }))
      expect(input).toMatchObject({
        _tag: "PluginInputError",
        message: `invalid input for 'greet': name: expected a string, got "bob" (must start with 'a')`,
        fieldsInvalid: ["name"],
      })
      const output = yield* Effect.flip(instance.invoke("short", {}))
      expect(output).toMatchObject({
        _tag: "PluginFatalError",
        message: `'short' returned output that does not match its schema: expected a string at least 3 character(s) long, got "ab"`,
      })
    }).pipe(Effect.provide(WorkerTestLive)),
  )
})
