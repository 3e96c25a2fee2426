// A worker reports its own usage in a call's final frame. It may lie about
// the amount (only the scheduling of its own plugin is misled), but a report
// that is not a finite non-negative number is a broken protocol like any
// other malformed frame: the call fails typed and the worker is killed.
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { describePlugin, startInstance } from "@plinth/runtime"
import { definitionSource, lockOf, recordingSpawner, removeRoot, tempRoot, waitGone, WireLive, writeHostilePlugin } from "./support/wire.js"

const root = tempRoot("usage")
afterAll(() => removeRoot(root))


// The first call on a worker has id 0: the plugin answers it itself, with the usage given as JSON text, and never returns.
const liarSource = definitionSource(`lie: action({ description: "", input: Schema.Struct({ usage: Schema.String }), output: Schema.String, handler: ({ usage }) =>
    Effect.zipRight(Effect.sync(() => channel(frame('{"_tag":"Success","id":0,"value":"forged","usage":' + usage + '}'))), Effect.never) }),`)

/** The liar with its manifest as \`describe\` writes it: the contract is the plugin's own. */
const liar = Effect.gen(function* () {
  const draft = writeHostilePlugin(root, "liar", liarSource)
  const declaration = yield* describePlugin({ plugin: draft, locked: yield* lockOf(draft) }).pipe(Effect.provide(WireLive))
  const plugin = writeHostilePlugin(root, "liar", liarSource, { actions: declaration.actions, config: declaration.config })
  return { plugin, locked: yield* lockOf(plugin) }
})

describe("usage reports from a worker", () => {
  for (const [label, usage] of [
    ["a negative CPU time", '{"cpuMs":-1,"peakRssBytes":1024}'],
    ["an infinite peak (1e999)", '{"cpuMs":1,"peakRssBytes":1e999}'],
    ["NaN, which JSON carries as null", '{"cpuMs":null,"peakRssBytes":1024}'],
  ] as const) {
    it.scopedLive(`${label} is a protocol break: the call fails typed and the worker is killed`, () =>
      Effect.gen(function* () {
        const { pids, layer } = recordingSpawner()
        const instance = yield* startInstance({ isolation: "permissions", ...(yield* liar) }).pipe(Effect.provide(layer))
        const failure = yield* Effect.flip(instance.invoke("lie", { usage }))
        expect(failure._tag).toBe("ProtocolError")
        expect(failure.message).toContain("usage")
        expect(yield* waitGone(pids[0]!)).toBe(true)
      }),
    )
  }

  it.scopedLive("a well-formed report, however untrue, is accepted and kept as the worker's last usage", () =>
    Effect.gen(function* () {
      const { layer } = recordingSpawner()
      const instance = yield* startInstance({ isolation: "permissions", ...(yield* liar) }).pipe(Effect.provide(layer))
      let told: unknown
      expect(yield* instance.invoke("lie", { usage: '{"cpuMs":0,"peakRssBytes":1}' }, { onUsage: (u) => void (told = u) })).toBe("forged")
      expect(told).toEqual({ cpuMs: 0, peakRssBytes: 1 })
      expect(yield* instance.usage).toEqual({ cpuMs: 0, peakRssBytes: 1 })
    }),
  )
})
