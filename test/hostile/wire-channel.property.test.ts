// Any bytes a worker writes on its channel end in decoded messages or in a
// typed ProtocolError with the worker killed; the host never throws. First
// over the host's receiving code with a stand-in process (fast-check drives
// every byte), then with real workers writing random bytes.
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, FastCheck as fc, Layer, Option, Stream } from "effect"
import { isPluginFailure } from "@plinth/domain"
import {
  encodeFrame,
  makeFrameReader,
  ProcessSpawner,
  startInstance,
  startWorker,
  type ChildProcessHandle,
  type ProcessExit,
} from "@plinth/runtime"
import { definitionSource, lockOf, removeRoot, tempRoot, waitGone, WireLive, writeHostilePlugin } from "./support/wire.js"

const root = tempRoot("property")
afterAll(() => removeRoot(root))

const frameBytes = (message: unknown) => {
  const { text, bytes } = encodeFrame(message)
  const out = Buffer.alloc(4 + bytes)
  out.writeUInt32BE(bytes)
  out.write(text, 4)
  return out
}

/** A stand-in worker process: the test feeds its channel bytes and reads what the host writes. */
const standIn = () => {
  const fromHost: Array<unknown> = []
  const reader = makeFrameReader(1 << 30, (text) => fromHost.push(JSON.parse(text)), () => {})
  let feed: ((chunk: Buffer) => void) | undefined
  let exit: ProcessExit | undefined
  const exitListeners: Array<(exit: ProcessExit) => void> = []
  const signals: Array<string> = []
  const end = (value: ProcessExit) => {
    if (exit !== undefined) return
    exit = value
    for (const listener of exitListeners.splice(0)) listener(value)
  }
  const handle: ChildProcessHandle = {
    pid: 999_999,
    write: (bytes) => reader.push(bytes),
    onData: (listener) => void (feed = listener),
    onExit: (listener) => (exit !== undefined ? listener(exit) : void exitListeners.push(listener)),
    stderrTail: () => "",
    kill: (signal) => {
      signals.push(signal)
      setImmediate(() => end({ exitCode: null, signal }))
    },
  }
  return {
    handle,
    fromHost,
    signals,
    feed: (chunk: Buffer) => feed!(chunk),
    end,
    layer: Layer.succeed(ProcessSpawner, { spawn: () => Effect.succeed(handle) }),
  }
}

const settle = () => Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))

const startOptions = {
  plugin: "standin",
  entry: "index.js",
  files: [],
  config: {},
  env: [],
  dataDir: undefined,
  spawn: { modulePath: "unused", execArgv: [], env: {}, cwd: "." },
  startTimeout: "5 seconds",
  interruptGrace: "50 millis",
  maxFrameBytes: { fromWorker: 4096 },
} as const

const declaration = { actions: {}, config: {} }

/** Messages a worker could send, well-formed or not, for the calls 0..3 the test makes. */
const someMessage = fc.oneof(
  fc.record({ _tag: fc.constantFrom("Success", "Chunk"), id: fc.integer({ min: 0, max: 5 }), value: fc.jsonValue({ maxDepth: 3 }) }),
  fc.record({ _tag: fc.constantFrom("End", "Interrupted"), id: fc.integer({ min: 0, max: 5 }) }),
  fc.record({ _tag: fc.constant("Progress"), id: fc.integer({ min: 0, max: 5 }), fraction: fc.double({ noNaN: true, noDefaultInfinity: true }) }),
  fc.record({ _tag: fc.constant("Failure"), id: fc.integer({ min: 0, max: 5 }), error: fc.constant({ _tag: "PluginFatalError", message: "x" }) }),
  fc.record({ _tag: fc.constantFrom("Ready", "Loaded", "LoadFailed", "Rejected"), secret: fc.string(), detail: fc.string() }),
  fc.jsonValue({ maxDepth: 3 }),
)
const someBytes = fc.oneof(
  someMessage.map(frameBytes),
  // A batch: a frame holding several messages (a chunk inside one is a protocol error).
  fc.array(someMessage, { minLength: 2, maxLength: 3 }).map(frameBytes),
  fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
  fc.constant(Buffer.from([0xff, 0xff, 0xff, 0xff])),
  fc.integer({ min: 0, max: 8192 }).map((n) => Buffer.from([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff])),
)
/** The bytes, concatenated and cut again at arbitrary points. */
const someStream = fc
  .tuple(fc.array(someBytes, { maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 4 }))
  .map(([parts, cuts]) => {
    const all = Buffer.concat(parts)
    const chunks: Array<Buffer> = []
    for (let at = 0, i = 0; at < all.length; i++) {
      const next = Math.min(all.length, at + cuts[i % cuts.length]!)
      chunks.push(all.subarray(at, next))
      at = next
    }
    return chunks
  })

/** The failure's tag, if the exit is a typed failure (no defect, no interruption). */
const failureTag = (exit: Exit.Exit<unknown, unknown>): string | undefined => {
  if (Exit.isSuccess(exit) || Cause.isDie(exit.cause) || Cause.isInterrupted(exit.cause)) return undefined
  const failure = Cause.failureOption(exit.cause)
  return Option.isSome(failure) && isPluginFailure(failure.value) ? failure.value._tag : undefined
}
const typedFailure = (exit: Exit.Exit<unknown, unknown>) => Exit.isSuccess(exit) || failureTag(exit) !== undefined

describe("any bytes on the channel", () => {
  it("before the handshake: the start fails typed (killed for a protocol error, or exited), and the host never throws", () =>
    fc.assert(
      fc.asyncProperty(someStream, async (chunks) => {
        const worker = standIn()
        const fiber = Effect.runFork(Effect.scoped(startWorker(startOptions)).pipe(Effect.provide(worker.layer)))
        await Effect.runPromise(settle())
        for (const chunk of chunks) worker.feed(chunk)
        await Effect.runPromise(settle())
        if (worker.signals.length === 0) worker.end({ exitCode: 1, signal: null })
        const exit = await Effect.runPromise(Fiber.await(fiber))
        // A start cannot succeed without the secret from Load, which random bytes never carry.
        expect(Exit.isFailure(exit)).toBe(true)
        expect(typedFailure(exit)).toBe(true)
        if (worker.signals.length > 0) expect(worker.signals).toContain("SIGKILL")
      }),
      { numRuns: 300 },
    ))

  it("with calls and a stream in flight: every call ends with a value or a typed failure; after a protocol error the worker is killed and every unsettled call fails with ProtocolError; the host never throws", () =>
    fc.assert(
      fc.asyncProperty(someStream, async (chunks) => {
        const worker = standIn()
        const program = Effect.gen(function* () {
          const starting = yield* Effect.fork(startWorker(startOptions))
          yield* settle()
          worker.feed(frameBytes({ _tag: "Ready", pid: 1 }))
          yield* settle()
          const load = worker.fromHost.find((m) => (m as { _tag: string })._tag === "Load") as { secret: string }
          worker.feed(frameBytes({ _tag: "Loaded", secret: load.secret, declaration }))
          const connection = yield* Fiber.join(starting)
          const calls = [
            yield* Effect.fork(Effect.exit(connection.call("a", {}))),
            yield* Effect.fork(Effect.exit(connection.call("b", [1, 2]))),
            yield* Effect.fork(Effect.exit(Stream.runCollect(connection.stream("c", {})))),
            yield* Effect.fork(Effect.exit(connection.call("d", "x"))),
          ]
          yield* settle()
          for (const chunk of chunks) worker.feed(chunk)
          yield* settle()
          const killed = worker.signals.includes("SIGKILL")
          if (!killed) worker.end({ exitCode: 0, signal: null })
          const exits = yield* Effect.forEach(calls, Fiber.join)
          for (const exit of exits) expect(typedFailure(exit)).toBe(true)
          if (killed) {
            for (const exit of exits) if (Exit.isFailure(exit)) expect(["ProtocolError", "PluginFatalError"]).toContain(failureTag(exit))
          }
        })
        await Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(worker.layer)))
      }),
      { numRuns: 300 },
    ))
})

describe("random bytes from a real worker", () => {
  const source = definitionSource(`
    fine: action({ description: "", input: Schema.Struct({}), output: Schema.String, handler: () => Effect.succeed("fine") }),
    noise: action({ description: "", input: Schema.Struct({ bytes: Schema.Array(Schema.Number) }), output: Schema.String,
      handler: ({ bytes }) => Effect.sync(() => { channel(Buffer.from(bytes)); return "returned" }) }),
  `)

  it.scopedLive("a worker writing random bytes onto its channel mid-call: the call ends typed, a protocol error kills the worker, the host goes on", () =>
    Effect.gen(function* () {
      const plugin = writeHostilePlugin(root, "noise", source)
      const instance = yield* startInstance({
        plugin,
        locked: yield* lockOf(plugin),
        drift: "ignore",
        interruptGrace: "300 millis",
        maxFrameBytes: { fromWorker: 1024 * 1024 },
        restartPolicy: { maxRestarts: 100, window: "1 minute" },
      })
      const samples = fc.sample(fc.uint8Array({ minLength: 1, maxLength: 64 }), { numRuns: 12, seed: 4242 })
      for (const bytes of samples) {
        const pid = yield* instance.pid
        const exit = yield* Effect.exit(instance.invoke("noise", { bytes: [...bytes] }, { timeout: "1 second" }))
        expect(typedFailure(exit)).toBe(true)
        if (failureTag(exit) === "ProtocolError") expect(yield* waitGone(pid!)).toBe(true)
        expect(yield* instance.invoke("fine", {})).toBe("fine")
      }
    }).pipe(Effect.provide(WireLive)),
  )
})
