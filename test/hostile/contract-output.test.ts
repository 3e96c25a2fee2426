import { rmSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either, Fiber, Stream } from "effect"
import { startInstance } from "@plinth/runtime"
import { buildCli, plinth } from "../support/cli.js"
import { lockNow } from "../support/plugins.js"
import { ContractLive, isAlive, once, pluginModule, tempRoot, workerPid, writeReviewedPlugin } from "./support/contract.js"

/*
 * Attack: plugin code sends results and stream items its reviewed manifest
 * does not allow. Here the code's output Schema accepts anything while its
 * JSON Schema annotation claims "integer": the generated manifest matches the
 * declaration (the drift check passes), but the code does not keep it. The
 * host checks every value against the manifest before it reaches the caller,
 * fails the call with OutputRejected and kills the worker.
 */

const root = tempRoot("output")
afterAll(() => rmSync(root, { recursive: true, force: true }))
const plugins = join(root, "plugins")

const source = pluginModule(
  `
  lie: action({ description: "an integer, it says", input: Schema.Struct({ honest: Schema.Boolean }), output: Claimed,
    handler: ({ honest }) => Effect.succeed(honest ? 7 : "not a number") }),
  lies: streaming({ description: "integers, it says", input: Schema.Struct({}), output: Claimed,
    stream: () => Stream.make(1, 2, "three", 4) }),
  shape: action({ description: "an object with n", input: Schema.Struct({}), output: ClaimedShape,
    handler: () => Effect.succeed({ n: 1, smuggled: "extra" }) }),
  slow: action({ description: "waits", input: Schema.Struct({}), output: Schema.Number,
    handler: () => Effect.as(Effect.sleep(Duration.seconds(60)), 1) }),
  pid: action({ description: "the worker's pid", input: Schema.Struct({}), output: Schema.Number, handler: () => Effect.sync(() => process.pid) }),
`,
  {
    prelude: `const Claimed = Schema.Unknown.annotations({ jsonSchema: { type: "integer" } })
const ClaimedShape = Schema.Unknown.annotations({ jsonSchema: { type: "object", required: ["n"], properties: { n: { type: "integer" } }, additionalProperties: false } })`,
  },
)

const reviewed = once(writeReviewedPlugin(plugins, "liar", source))

describe("hostile: output the reviewed manifest does not allow", () => {
  it.scopedLive("a result is rejected before it reaches the caller: OutputRejected, the worker is killed, calls in flight fail typed, the next call gets a new worker", () =>
    Effect.gen(function* () {
      const { plugin, locked } = yield* reviewed
      // drift "refuse" (the default): the manifest is exactly what the code declares.
      const instance = yield* startInstance({ plugin, locked })
      const firstPid = yield* workerPid(instance)
      expect(yield* instance.invoke("lie", { honest: true })).toBe(7)

      const inFlight = yield* Effect.fork(Effect.either(instance.invoke("slow", {})))
      yield* Effect.sleep("100 millis")
      const rejected = yield* Effect.flip(instance.invoke("lie", { honest: false }))
      expect(rejected).toMatchObject({ _tag: "OutputRejected", plugin: "liar", action: "lie" })
      expect(rejected._tag === "OutputRejected" && rejected.detail).toBe("result: (root): must be integer")
      expect(rejected.message).not.toContain("\n")
      // When the caller learns of it, the worker is gone.
      expect(isAlive(firstPid)).toBe(false)
      const other = yield* Fiber.join(inFlight)
      expect(Either.isLeft(other) && other.left).toMatchObject({ _tag: "WorkerExited" })
      expect(Either.isLeft(other) && other.left.message).toContain("does not allow")

      const secondPid = yield* workerPid(instance)
      expect(secondPid).not.toBe(firstPid)
      expect(yield* instance.invoke("lie", { honest: true })).toBe(7)

      // An unknown key where the schema says additionalProperties: false is refused too.
      const smuggled = yield* Effect.flip(instance.invoke("shape", {}))
      expect(smuggled).toMatchObject({ _tag: "OutputRejected", action: "shape", detail: "result: smuggled: is not allowed here" })
      expect(isAlive(secondPid)).toBe(false)
      expect(yield* workerPid(instance)).not.toBe(secondPid)
    }).pipe(Effect.provide(ContractLive)),
  )

  it.scopedLive("a stream item is rejected before it reaches the caller: the stream fails with OutputRejected, the worker is killed, the next call works", () =>
    Effect.gen(function* () {
      const { plugin, locked } = yield* reviewed
      const instance = yield* startInstance({ plugin, locked })
      const pid = yield* workerPid(instance)
      const received: Array<unknown> = []
      const failure = yield* Effect.flip(Stream.runForEach(instance.stream("lies", {}), (item) => Effect.sync(() => received.push(item))))
      expect(failure).toMatchObject({ _tag: "OutputRejected", plugin: "liar", action: "lies", detail: "stream item: (root): must be integer" })
      // Only allowed items were delivered, and nothing after the bad one.
      expect(received.every((item) => Number.isInteger(item))).toBe(true)
      expect(received).not.toContain(4)
      expect(isAlive(pid)).toBe(false)
      expect(yield* workerPid(instance)).not.toBe(pid)
    }).pipe(Effect.provide(ContractLive)),
  )

  describe("through the CLI", () => {
    beforeAll(async () => {
      buildCli()
      await Effect.runPromise(reviewed)
      await lockNow(plugins, join(root, "PLUGINS.lock"))
    })

    it("exits 8 with a one-line OutputRejected failure; the value never shows", async () => {
      const run = await plinth(root, ["plugins", "invoke", "liar", "lie", "--input", '{"honest": false}'])
      expect(run.code, run.stderr).toBe(8)
      expect(run.stdout).not.toContain("not a number")
      expect(run.stderr).toContain("failed [OutputRejected]: 'liar' sent output for 'lie' that its manifest does not allow (result: (root): must be integer); its worker was stopped")
      expect(run.stderr).toContain("category: fatal, not retriable")

      const json = await plinth(root, ["plugins", "invoke", "liar", "lies", "--input", "{}", "--json"])
      expect(json.code).toBe(8)
      const lines = json.stdout.trim().split("\n").map((line) => JSON.parse(line))
      expect(lines.at(-1)).toMatchObject({ ok: false, error: { _tag: "OutputRejected", action: "lies" }, job: { category: "fatal" } })
      expect(json.stdout).not.toContain("three")

      expect((await plinth(root, ["plugins", "invoke", "liar", "lie", "--input", '{"honest": true}'])).code).toBe(0)
    })
  })
})
