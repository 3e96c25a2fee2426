import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc, Schema } from "effect"
import { encodeFrame, frameCapsArg, frameCapsFromArgv, makeFrameReader, makeFrameWriter, resolveFrameCaps } from "../src/wire/Framing.js"
import { decodeHostMessage, decodeWorkerMessage, encodeHostMessage, HostMessage, Invoke, parseFrame, WorkerMessage } from "../src/wire/Protocol.js"

const taggedLike = fc.record({
  _tag: fc.constantFrom("Load", "Invoke", "Interrupt", "Shutdown", "Ready", "Loaded", "LoadFailed", "Success", "Chunk", "End", "Failure", "Progress", "Interrupted", "Rejected", "Other"),
  id: fc.oneof(fc.integer(), fc.double(), fc.string()),
  action: fc.jsonValue(),
  input: fc.jsonValue(),
  error: fc.jsonValue(),
  streaming: fc.jsonValue(),
})
const anyMessage = fc.oneof(fc.jsonValue(), taggedLike, fc.anything())

describe("protocol", () => {
  it.prop("any value sent as a message is decoded or rejected as a typed ProtocolError, never thrown", [anyMessage], ([message]) => {
    const results: Array<Either.Either<unknown, { readonly _tag: string }>> = [decodeHostMessage(message), decodeWorkerMessage(message)]
    for (const result of results) if (Either.isLeft(result)) expect(result.left._tag).toBe("ProtocolError")
  })

  // The call-path messages skip the Schema when a hand-written guard accepts them; the answer must be the same.
  // Well-formed call-path messages, then perhaps one field replaced, dropped or added.
  const callPathLike = fc
    .tuple(
      fc.oneof(
        fc.record({ _tag: fc.constant("Invoke"), id: fc.nat(), action: fc.string(), input: fc.jsonValue(), streaming: fc.boolean() }),
        fc.record({ _tag: fc.constantFrom("Success", "Chunk"), id: fc.nat(), value: fc.jsonValue() }),
        fc.record({
          _tag: fc.constantFrom("Success", "Chunk"),
          id: fc.nat(),
          value: fc.jsonValue(),
          usage: fc.oneof(
            fc.record({ cpuMs: fc.double(), peakRssBytes: fc.double() }),
            fc.record({ cpuMs: fc.nat(), peakRssBytes: fc.nat(), extra: fc.jsonValue() }, { requiredKeys: ["cpuMs", "peakRssBytes"] }),
            fc.jsonValue(),
          ),
        }),
      ),
      fc.constantFrom("_tag", "id", "action", "input", "value", "streaming", "usage", "extra", "__proto__"),
      fc.oneof(fc.constant("keep"), fc.constant("drop"), fc.constant(undefined), fc.constant(2 ** 53), fc.constant(-1), fc.double(), fc.jsonValue()),
    )
    .map(([message, key, change]): unknown => {
      if (change === "keep") return message
      const copy: Record<string, unknown> = { ...message }
      if (change === "drop") delete copy[key]
      else Object.defineProperty(copy, key, { value: change, enumerable: true, writable: true, configurable: true })
      return copy
    })
  it.prop("the call path's fast checks accept exactly what the Schemas accept", [fc.oneof(callPathLike, anyMessage)], ([message]) => {
    const pairs: ReadonlyArray<readonly [(u: unknown) => Either.Either<unknown, unknown>, Schema.Schema<any, any, never>]> = [
      [decodeHostMessage, HostMessage],
      [decodeWorkerMessage, WorkerMessage],
    ]
    for (const [decode, schema] of pairs) {
      const expected = Either.try(() => Schema.decodeUnknownEither(schema, { onExcessProperty: "error" })(message))
      const actual = decode(message)
      if (Either.isLeft(expected)) continue // a hostile value: the first test covers it
      expect(Either.isRight(actual)).toBe(Either.isRight(expected.right))
      if (Either.isRight(actual) && Either.isRight(expected.right)) expect(actual.right).toEqual(expected.right.right)
    }
  })

  it("a hostile object with a throwing getter is a ProtocolError", () => {
    const hostile = Object.defineProperty({ _tag: "Invoke" }, "id", { get: () => { throw new Error("gotcha") }, enumerable: true })
    expect(Either.getLeft(decodeHostMessage(hostile)).pipe((o) => o._tag)).toBe("Some")
  })

  it("a declaration keeps an action named like an Object.prototype key, so the drift check sees it", () => {
    const [raw] = Either.getOrThrow(
      parseFrame('{"_tag":"Loaded","secret":"s","declaration":{"actions":{"__proto__":{"description":"","input":{},"output":{}}},"config":{}}}'),
    )
    const decoded = Either.getOrThrow(decodeWorkerMessage(raw))
    expect(decoded._tag === "Loaded" && Object.keys(decoded.declaration.actions)).toEqual(["__proto__"])
  })

  it("round-trips a well-formed message", () => {
    const sent = Invoke.make({ id: 7, action: "greet", input: { name: "Ann" }, streaming: false })
    expect(decodeHostMessage(encodeHostMessage(sent))).toEqual(Either.right(sent))
  })

  /** Writes messages through the frame writer and returns the bytes of one flush. */
  const written = async (messages: ReadonlyArray<unknown>, solo = true, batchCap?: number): Promise<Buffer> => {
    const out: Array<Buffer> = []
    const write = makeFrameWriter((bytes) => out.push(bytes), batchCap)
    for (const message of messages) write(encodeFrame(message), solo)
    await Promise.resolve()
    return Buffer.concat(out)
  }

  /** Feeds `bytes` to a reader in pieces cut at `cuts` (cycled), collecting what it reports. */
  const read = (bytes: Buffer, cuts: ReadonlyArray<number>, cap: number) => {
    const frames: Array<unknown> = []
    const sizes: Array<number> = []
    const errors: Array<string> = []
    const reader = makeFrameReader(
      cap,
      (text, size) => {
        frames.push(JSON.parse(text))
        sizes.push(size)
      },
      (detail) => errors.push(detail),
    )
    let at = 0
    for (let i = 0; at < bytes.length; i++) {
      const next = Math.min(bytes.length, at + cuts[i % cuts.length]!)
      reader.push(bytes.subarray(at, next))
      at = next
    }
    return { frames, sizes, errors }
  }

  it("frames arrive whole and in order however the stream is split, each with its size in bytes", () =>
    fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.jsonValue(), fc.string({ unit: "grapheme", minLength: 60_000, maxLength: 70_000 })), { maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 100_000 }), { minLength: 1, maxLength: 5 }),
        async (messages, cuts) => {
          const bytes = await written(messages)
          const { frames, sizes, errors } = read(bytes, cuts, 1 << 30)
          expect(errors).toEqual([])
          expect(frames).toEqual(JSON.parse(JSON.stringify(messages)))
          expect(sizes).toEqual(messages.map((m) => Buffer.byteLength(JSON.stringify(m))))
        },
      ),
      { numRuns: 30 },
    ))

  it("messages written in one tick travel as batches (JSON arrays) no larger than the batch cap; solo ones alone; one write in all", async () => {
    const messages = [{ a: 1 }, { b: "x".repeat(50) }, { c: [1, 2] }, { d: null }]
    const all = await written(messages, false)
    expect(read(all, [1 << 20], 1 << 30).frames).toEqual([messages])
    const capped = await written(messages, false, 70)
    const frames = read(capped, [7], 1 << 30).frames
    expect(frames.flatMap((f) => (Array.isArray(f) ? f : [f]))).toEqual(messages)
    expect(frames.length).toBeGreaterThan(1)
    for (const f of frames) expect(Buffer.byteLength(JSON.stringify(f))).toBeLessThanOrEqual(70)
    const out: Array<Buffer> = []
    const write = makeFrameWriter((bytes) => out.push(bytes))
    write(encodeFrame({ a: 1 }))
    write(encodeFrame({ chunk: 1 }), true)
    write(encodeFrame({ b: 2 }))
    write(encodeFrame({ c: 3 }))
    await Promise.resolve()
    expect(out).toHaveLength(1)
    expect(read(out[0]!, [3], 1 << 30).frames).toEqual([{ a: 1 }, { chunk: 1 }, [{ b: 2 }, { c: 3 }]])
  })

  it("a header over the cap is an error as soon as the header is read, and nothing after it is read", async () => {
    const bytes = await written([{ a: 1 }, "x".repeat(2000), { b: 2 }])
    const { frames, errors } = read(bytes, [3], 1000)
    expect(frames).toEqual([{ a: 1 }])
    expect(errors).toEqual(["a frame header states 2002 bytes, over the cap of 1000"])
    // A 4 GiB claim: reported at once, with four bytes read.
    const claim = read(Buffer.from([0xff, 0xff, 0xff, 0xff]), [4], 64 * 1024 * 1024)
    expect(claim.errors).toEqual(["a frame header states 4294967295 bytes, over the cap of 67108864"])
  })

  it("a frame that is not JSON, an empty batch, or too deep, is a ProtocolError; a batch is its messages", () => {
    for (const text of ["", "{", "[]", "[".repeat(300) + "]".repeat(300), "x".repeat(10)]) {
      expect(Either.getLeft(parseFrame(text)).pipe((o) => o._tag), text.slice(0, 10)).toBe("Some")
    }
    expect(parseFrame('{"_tag":"Ready","pid":1}')).toEqual(Either.right([{ _tag: "Ready", pid: 1 }]))
    expect(parseFrame('[{"_tag":"End","id":1},{"_tag":"End","id":2}]')).toEqual(Either.right([{ _tag: "End", id: 1 }, { _tag: "End", id: 2 }]))
  })

  it("frame caps travel to the worker as an argument; bad caps are refused", () => {
    const caps = resolveFrameCaps({ fromWorker: 1234 })
    expect(frameCapsFromArgv(["node", "bootstrap.js", frameCapsArg(caps)])).toEqual(caps)
    expect(frameCapsFromArgv(["node"])).toEqual(resolveFrameCaps(undefined))
    expect(() => resolveFrameCaps({ toWorker: 0 })).toThrow(/maxFrameBytes.toWorker/)
    expect(() => resolveFrameCaps({ fromWorker: 2 ** 32 })).toThrow(/maxFrameBytes.fromWorker/)
  })
})
