// Plugin code writes protocol frames itself: a forged handshake, forged
// replies, garbage, on the channel's fd, on every fd it can reach, on
// process.send. The host believes none of it: a start fails typed or
// reports the true declaration; a call fails typed; the worker that did it
// is killed; the host goes on.
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { describePlugin, ProcessSpawner, spawnWorkerProcess, startInstance } from "@plinth/runtime"
import { tiers } from "./support/isolation.js"
import { declared, definitionSource, lockOf, recordingSpawner, removeRoot, tempRoot, waitGone, WireLive, writeHostilePlugin } from "./support/wire.js"

const root = tempRoot("forged")
afterAll(() => removeRoot(root))


const greet = `greet: action({ description: "greets", input: Schema.Struct({}), output: Schema.String, handler: () => Effect.succeed("hello") }),`
// Not in the manifest: if it ever ran, it would answer this.
const evil = `evil: action({ description: "", input: Schema.Struct({}), output: Schema.String, handler: () => Effect.succeed("EVIL RAN") }),`

/** The true declaration of a plugin with only `greet`: what the reviewed manifest says. */
const reviewedDeclaration = Effect.gen(function* () {
  const honest = writeHostilePlugin(root, "honest", definitionSource(greet))
  return yield* describePlugin({ plugin: honest, locked: yield* lockOf(honest) }).pipe(Effect.provide(WireLive))
})

/** Every way plugin code can try to pass a handshake off as the runtime's. */
const forgeries = (declaration: unknown) => `
const forgedDeclaration = ${JSON.stringify(declaration)}
const forged = [
  frame({ _tag: "Loaded", secret: "guessed", declaration: forgedDeclaration }),
  frame({ _tag: "Loaded", declaration: forgedDeclaration }),
  frame({ _tag: "LoadFailed", secret: "", error: { _tag: "PluginFatalError", message: "forged" } }),
  frame({ _tag: "Ready", pid: 1 }),
]
`

const processSurface = `surface: action({ description: "", input: Schema.Struct({}), output: Schema.Unknown, handler: () => Effect.sync(() => ({
  send: typeof process.send, channel: typeof process.channel, connected: typeof process.connected, activeHandles: typeof process._getActiveHandles,
  globals: Object.getOwnPropertyNames(globalThis).filter((k) => { try { const v = globalThis[k]; return v !== null && typeof v === "object" && typeof v.write === "function" && typeof v.on === "function" } catch { return false } }),
})) }),`

// Every attack in both isolation tiers: the host-side defences must not lean on the OS sandbox.
describe.each(tiers)("forged frames, %s tier", (tier) => {
  it.scopedLive("a module body writing a well-formed forged Loaded (declaring what the manifest says, hiding an undeclared action) to the channel fails the start typed", () =>
    Effect.gen(function* () {
      const manifest = yield* reviewedDeclaration
      const { pids, layer } = recordingSpawner()
      const plugin = writeHostilePlugin(
        root,
        "forge-handshake",
        definitionSource(`${greet}${evil}`, `${forgeries(manifest)}\nchannel(forged[0])`),
        manifest,
      )
      const failure = yield* Effect.flip(startInstance({ isolation: tier, plugin, locked: yield* lockOf(plugin) }).pipe(Effect.provide(layer)))
      expect(failure._tag).toBe("WorkerStartFailed")
      expect(failure.message).toContain("broke the protocol: Loaded without this start's secret")
      expect(pids).toHaveLength(1)
      expect(yield* waitGone(pids[0]!)).toBe(true)
    }),
  )

  it.scopedLive("a module body spraying forged handshakes, garbage and a 4 GiB header on every fd 0..63 and process.send: the start fails typed or reports the true declaration, and the undeclared action never runs", () =>
    Effect.gen(function* () {
      const manifest = yield* reviewedDeclaration
      const { pids, layer } = recordingSpawner()
      const body = `${forgeries(manifest)}
for (const bytes of forged) spray(bytes)
spray(Buffer.from("garbage without a header\\n{\\"_tag\\":\\"Loaded\\"}\\n"))
spray(Buffer.from([0xff, 0xff, 0xff, 0xff]))
if (typeof process.send === "function") { try { process.send({ _tag: "Loaded", declaration: forgedDeclaration }) } catch {} }`
      const plugin = writeHostilePlugin(root, "forge-spray", definitionSource(`${greet}${evil}`, body), manifest)
      const locked = yield* lockOf(plugin)
      // Twice with drift refused (the default), once with drift ignored, so a start that succeeds shows its declaration.
      for (const drift of ["refuse", "ignore"] as const) {
        const outcome = yield* Effect.either(Effect.scoped(Effect.flatMap(startInstance({ isolation: tier, plugin, locked, drift }), (instance) =>
          Effect.map(Effect.either(instance.invoke("evil", {})), (evilOutcome) => ({ declaration: instance.declaration, evilOutcome })),
        )).pipe(Effect.provide(layer)))
        if (outcome._tag === "Left") {
          expect(["WorkerStartFailed", "DeclarationDrift"]).toContain(outcome.left._tag)
        } else {
          // Only the true declaration, which has `evil`: drift "ignore" is how a host asks for exactly that (describe).
          expect(drift).toBe("ignore")
          expect(Object.keys(outcome.right.declaration.actions).sort()).toEqual(["evil", "greet"])
        }
      }
      for (const pid of pids) expect(yield* waitGone(pid)).toBe(true)
    }),
  )

  it.scopedLive("plugin code finds no channel: no process.send, process.channel, process.connected, no live-handle listing, no global stream", () =>
    Effect.gen(function* () {
      const plugin = writeHostilePlugin(root, "surface", definitionSource(processSurface))
      const instance = yield* startInstance({ isolation: tier, plugin, locked: yield* lockOf(plugin), drift: "ignore" })
      expect(yield* instance.invoke("surface", {})).toEqual({
        send: "undefined",
        channel: "undefined",
        connected: "undefined",
        activeHandles: "undefined",
        globals: [],
      })
    }).pipe(Effect.provide(WireLive)),
  )

  const duringCall = (name: string, body: string) =>
    `${name}: action({ description: "", input: Schema.Struct({}), output: Schema.String, handler: () => Effect.sync(() => { ${body}; return "returned normally" }) }),`
  const calls = [
    duringCall("replyNotInFlight", `channel(frame({ _tag: "Success", id: 9999, value: "forged" }))`),
    duringCall("failureNotInFlight", `channel(frame({ _tag: "Failure", id: 4242, error: { _tag: "PluginFatalError", message: "forged" } }))`),
    duringCall("chunkForUnary", `for (let id = 0; id < 8; id++) channel(frame({ _tag: "Chunk", id, value: "forged" }))`),
    duringCall("secondLoaded", `channel(frame({ _tag: "Loaded", secret: "x", declaration: { actions: {}, config: {} } }))`),
    duringCall("secondReady", `channel(frame({ _tag: "Ready", pid: 1 }))`),
    duringCall("interruptedUnasked", `for (let id = 0; id < 8; id++) channel(frame({ _tag: "Interrupted", id }))`),
    duringCall("garbage", `channel(Buffer.from("\\u0000\\u0000\\u0000\\u0005hello"))`),
    duringCall("notAMessage", `channel(frame({ _tag: "Nonsense", id: 0 }))`),
    duringCall("sprayEverything", `spray(frame({ _tag: "Success", id: 777, value: "forged" })); spray(Buffer.from("no header at all")); if (typeof process.send === "function") process.send({ _tag: "Success", id: 0, value: "forged" })`),
  ]
  const names = ["replyNotInFlight", "failureNotInFlight", "chunkForUnary", "secondLoaded", "secondReady", "interruptedUnasked", "garbage", "notAMessage", "sprayEverything"]

  it.scopedLive("a frame plugin code writes during a call (a reply for a call not in flight, a chunk for a unary call, a second handshake, garbage, on every fd) is a ProtocolError: the worker is killed, the host goes on with a new one", () =>
    Effect.gen(function* () {
      const { pids, layer } = recordingSpawner()
      const plugin = writeHostilePlugin(root, "forge-calls", definitionSource(`${greet}${calls.join("\n")}`))
      const instance = yield* startInstance({ isolation: tier, plugin, locked: yield* lockOf(plugin), drift: "ignore", restartPolicy: { maxRestarts: 100, window: "1 minute" } }).pipe(
        Effect.provide(layer),
      )
      for (const name of names) {
        const pid = yield* instance.pid
        const failure = yield* Effect.flip(instance.invoke(name, {}))
        expect(failure._tag, name).toBe("ProtocolError")
        expect(yield* waitGone(pid!), name).toBe(true)
        // The host goes on: the next call runs on a new worker.
        expect(yield* instance.invoke("greet", {}), name).toBe("hello")
        expect(yield* instance.pid).not.toBe(pid)
      }
      expect(pids.length).toBe(names.length + 1)
    }),
  )

  it.scopedLive("a forged reply cannot reach another caller's call on the same worker unless that call is in flight; a slow call in flight fails typed when its worker is killed for a forged frame", () =>
    Effect.gen(function* () {
      const plugin = writeHostilePlugin(
        root,
        "forge-other",
        definitionSource(`${greet}
          slow: action({ description: "", input: Schema.Struct({}), output: Schema.String, handler: () => Effect.as(Effect.sleep("2 seconds"), "slow done") }),
          ${duringCall("forgeFar", `channel(frame({ _tag: "Success", id: 123456, value: "forged" }))`)}`),
        declared(["greet", "slow", "forgeFar"]),
      )
      const instance = yield* startInstance({ isolation: tier, plugin, locked: yield* lockOf(plugin), drift: "ignore" })
      const slow = yield* Effect.fork(instance.invoke("slow", {}))
      yield* Effect.sleep("100 millis")
      expect((yield* Effect.flip(instance.invoke("forgeFar", {})))._tag).toBe("ProtocolError")
      const slowFailure = yield* Effect.flip(slow.await.pipe(Effect.flatten))
      expect(slowFailure._tag).toBe("ProtocolError")
    }).pipe(Effect.provide(WireLive)),
  )

  it.scopedLive("the channel passes through an exec'd launcher (the seam an OS sandbox uses): calls work, and a forged frame still kills the worker", () =>
    Effect.gen(function* () {
      const Launched = Layer.merge(
        WireLive,
        Layer.succeed(ProcessSpawner, { spawn: (request) => Effect.sync(() => spawnWorkerProcess({ ...request, launcher: ["/usr/bin/env", "--"] })) }),
      )
      const plugin = writeHostilePlugin(root, "launched", definitionSource(`${greet}${duringCall("replyNotInFlight", `channel(frame({ _tag: "Success", id: 9999, value: "forged" }))`)}`))
      const instance = yield* startInstance({ plugin, locked: yield* lockOf(plugin), drift: "ignore" }).pipe(Effect.provide(Launched))
      expect(yield* instance.invoke("greet", {})).toBe("hello")
      const pid = yield* instance.pid
      expect((yield* Effect.flip(instance.invoke("replyNotInFlight", {})))._tag).toBe("ProtocolError")
      expect(yield* waitGone(pid!)).toBe(true)
    }),
  )
})
