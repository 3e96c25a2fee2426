// One value domain, both ways: what JSON cannot carry fails the call typed,
// on the side that has it, and nothing crashes. A host's bad input never
// leaves the host; a plugin's bad output fails its call and the worker goes
// on; a worker that bypasses its runtime to send one is killed.
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import { startInstance } from "@plinth/runtime"
import { definitionSource, isAlive, lockOf, removeRoot, tempRoot, waitGone, WireLive, writeHostilePlugin } from "./support/wire.js"
import { tiers } from "./support/isolation.js"

const root = tempRoot("values")
afterAll(() => removeRoot(root))

const deep = (depth: number) => {
  let v: unknown = 0
  for (let i = 0; i < depth; i++) v = [v]
  return v
}

const source = definitionSource(`
  echo: action({ description: "", input: Schema.Unknown, output: Schema.Unknown, handler: (input) => Effect.succeed(input) }),
  odd: action({ description: "", input: Schema.Struct({ kind: Schema.String }), output: Schema.Unknown, handler: ({ kind }) => Effect.sync(() => {
    const cyclic = { a: 1 }; cyclic.self = cyclic
    let deep = 0; for (let i = 0; i < 5000; i++) deep = [deep]
    return { map: { m: new Map([["a", 1]]) }, date: { at: new Date(0) }, bigint: { n: 10n }, cycle: cyclic, deep, nan: [Number.NaN],
      undefinedField: { u: undefined }, fn: { f: () => 1 }, typed: new Uint8Array(3), big: "x".repeat(2 * 1024 * 1024) }[kind]
  }) }),
  oddChunks: streaming({ description: "", input: Schema.Struct({}), output: Schema.Unknown, stream: () => Stream.make(1, 2, 10n, 4) }),
  rawDeep: action({ description: "", input: Schema.Struct({}), output: Schema.Unknown, handler: () => Effect.sync(() => {
    // Bypasses the runtime: a reply 5,000 arrays deep, straight onto the channel, for every id a call may have.
    const text = "[".repeat(5000) + "]".repeat(5000)
    for (let id = 0; id < 8; id++) channel(frame('{"_tag":"Success","id":' + id + ',"value":' + text + '}'))
    return "returned"
  }) }),
`)

// Both isolation tiers: the value checks are the host's and the runtime's, whatever sandbox the worker runs in.
describe.each(tiers)("odd values, %s tier", (tier) => {
  it.scopedLive("host → worker: a cycle, a BigInt, 5,000-deep nesting, a Map, a Date, undefined, a function fail the call with PluginInputError naming the path; nothing is sent and the worker keeps serving", () =>
    Effect.gen(function* () {
      const plugin = writeHostilePlugin(root, "values-in", source)
      const instance = yield* startInstance({ isolation: tier, plugin, locked: yield* lockOf(plugin), drift: "ignore" })
      const pid = yield* instance.pid
      const cyclic: Record<string, unknown> = { a: 1 }
      cyclic["self"] = cyclic
      const inputs: ReadonlyArray<readonly [unknown, RegExp, string]> = [
        [cyclic, /a cycle .* at \$\.self/, "self"],
        [{ n: 10n }, /a BigInt at \$\.n/, "n"],
        [{ items: [1, deep(5000)] }, /nested deeper than 256 arrays\/objects at \$\.items\[1\]\[0\]/, `items.1${".0".repeat(254)}`],
        [{ m: new Map() }, /a Map at \$\.m/, "m"],
        [[new Date(0)], /a Date at \$\[0\]/, "0"],
        [{ u: undefined }, /undefined at \$\.u/, "u"],
        [{ f: () => 1 }, /a function at \$\.f/, "f"],
        [Number.NaN, /a non-finite number \(NaN\) at \$$/, "(root)"],
      ]
      for (const [input, message, field] of inputs) {
        const failure = yield* Effect.flip(instance.invoke("echo", input))
        expect(failure._tag).toBe("PluginInputError")
        expect(failure.message).toMatch(message)
        expect(failure._tag === "PluginInputError" && failure.fieldsInvalid).toEqual([field])
        const streamFailure = yield* Effect.flip(Stream.runDrain(instance.stream("oddChunks", input)))
        expect(streamFailure._tag).toBe("PluginInputError")
      }
      expect(yield* instance.pid).toBe(pid)
      expect(isAlive(pid!)).toBe(true)
      expect(yield* instance.invoke("echo", { fine: [1, "two", null, true, { deep: deep(200) }] })).toEqual({ fine: [1, "two", null, true, { deep: deep(200) }] })
    }).pipe(Effect.provide(WireLive)),
  )

  it.scopedLive("worker → host: a Map, a Date, a BigInt, a cycle, 5,000-deep nesting, NaN, undefined, a function, a typed array out of an Unknown-output action fail that call with PluginFatalError; the worker keeps serving", () =>
    Effect.gen(function* () {
      const plugin = writeHostilePlugin(root, "values-out", source)
      const instance = yield* startInstance({ isolation: tier, plugin, locked: yield* lockOf(plugin), drift: "ignore" })
      const pid = yield* instance.pid
      const expected: Record<string, RegExp> = {
        map: /a Map at \$\.m/,
        date: /a Date at \$\.at/,
        bigint: /a BigInt at \$\.n/,
        cycle: /a cycle .* at \$\.self/,
        deep: /nested deeper than 256/,
        nan: /non-finite number \(NaN\) at \$\[0\]/,
        undefinedField: /undefined at \$\.u/,
        fn: /a function at \$\.f/,
        typed: /a Uint8Array at \$/,
      }
      for (const [kind, message] of Object.entries(expected)) {
        const failure = yield* Effect.flip(instance.invoke("odd", { kind }))
        expect(failure._tag, kind).toBe("PluginFatalError")
        expect(failure.message, kind).toMatch(message)
      }
      const streamFailure = yield* Effect.flip(Stream.runCollect(instance.stream("oddChunks", {})))
      expect(streamFailure).toMatchObject({ _tag: "PluginFatalError" })
      expect(streamFailure.message).toMatch(/a BigInt at \$/)
      expect(yield* instance.pid).toBe(pid)
      expect(yield* instance.invoke("echo", "still serving")).toBe("still serving")
    }).pipe(Effect.provide(WireLive)),
  )

  it.scopedLive("frame caps both ways: an input over maxFrameBytes.toWorker is PluginInputError before it is sent, a result over maxFrameBytes.fromWorker is PluginFatalError in the worker; both name the cap and the worker keeps serving", () =>
    Effect.gen(function* () {
      const plugin = writeHostilePlugin(root, "values-caps", source)
      const instance = yield* startInstance({
        isolation: tier,
        plugin,
        locked: yield* lockOf(plugin),
        drift: "ignore",
        maxFrameBytes: { toWorker: 1024 * 1024, fromWorker: 1024 * 1024 },
      })
      const pid = yield* instance.pid
      const tooBig = yield* Effect.flip(instance.invoke("echo", "y".repeat(1024 * 1024)))
      expect(tooBig._tag).toBe("PluginInputError")
      expect(tooBig.message).toMatch(/over the cap of 1048576 \(maxFrameBytes\.toWorker\)/)
      const bigResult = yield* Effect.flip(instance.invoke("odd", { kind: "big" }))
      expect(bigResult._tag).toBe("PluginFatalError")
      expect(bigResult.message).toMatch(/over the cap of 1048576 .*maxFrameBytes\.fromWorker/)
      expect(yield* instance.invoke("echo", "z".repeat(1000_000))).toBe("z".repeat(1000_000))
      expect(yield* instance.pid).toBe(pid)
    }).pipe(Effect.provide(WireLive)),
  )

  it.scopedLive("a reply 5,000 arrays deep written straight onto the channel, bypassing the runtime, is a ProtocolError: the worker is killed, the host goes on", () =>
    Effect.gen(function* () {
      const plugin = writeHostilePlugin(root, "values-raw", source)
      const instance = yield* startInstance({ isolation: tier, plugin, locked: yield* lockOf(plugin), drift: "ignore" })
      const pid = yield* instance.pid
      const failure = yield* Effect.flip(instance.invoke("rawDeep", {}))
      expect(failure._tag).toBe("ProtocolError")
      expect(failure.message).toMatch(/nests deeper than 256/)
      expect(yield* waitGone(pid!)).toBe(true)
      expect(Chunk.toArray(yield* Stream.runCollect(instance.stream("oddChunks", {}).pipe(Stream.take(2))))).toEqual([1, 2])
    }).pipe(Effect.provide(WireLive)),
  )
})
