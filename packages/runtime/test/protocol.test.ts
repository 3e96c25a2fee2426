import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc, Schema } from "effect"
import { makeReceiver, makeSender } from "../src/wire/Channel.js"
import { decodeHostMessage, decodeWorkerMessage, encodeHostMessage, HostMessage, Invoke, WorkerMessage } from "../src/wire/Protocol.js"

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
      ),
      fc.constantFrom("_tag", "id", "action", "input", "value", "streaming", "extra", "__proto__"),
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

  it("round-trips a well-formed message", () => {
    const sent = Invoke.make({ id: 7, action: "greet", input: { name: "Ann" }, streaming: false })
    expect(decodeHostMessage(encodeHostMessage(sent))).toEqual(Either.right(sent))
  })

  it.prop("frames arrive in the order they were sent, whichever way they travel and however the bulk bytes are split", [
    fc.array(fc.oneof(fc.record({ n: fc.nat() }), fc.string().map((tail) => ({ text: "b".repeat(70_000) + tail }))), { maxLength: 8 }),
    fc.array(fc.integer({ min: 1, max: 100_000 }), { minLength: 1, maxLength: 5 }),
    fc.boolean(),
  ], ([frames, cuts, bulkFirst]) => {
    const ipc: Array<unknown> = []
    const bytes: Array<Uint8Array> = []
    const send = makeSender((frame) => ipc.push(frame), { write: (b) => bytes.push(b) })
    for (const frame of frames) send(frame)
    const received: Array<unknown> = []
    const receiver = makeReceiver((frame) => received.push(frame))
    const all = Buffer.concat(bytes)
    const feedBulk = () => {
      let at = 0
      for (let i = 0; at < all.length; i++) {
        const next = Math.min(all.length, at + cuts[i % cuts.length]!)
        receiver.bulk(all.subarray(at, next))
        at = next
      }
    }
    if (bulkFirst) feedBulk()
    for (const frame of ipc) receiver.ipc(frame)
    if (!bulkFirst) feedBulk()
    expect(received).toEqual(frames)
  })

  it("a bulk frame that does not deserialize arrives as a message the protocol rejects", () => {
    const received: Array<unknown> = []
    const receiver = makeReceiver((frame) => received.push(frame))
    const garbage = Buffer.from([0, 0, 0, 3, 0xff, 0xff, 0xff])
    receiver.ipc("plinth:bulk")
    receiver.bulk(garbage)
    expect(received).toHaveLength(1)
    expect(Either.getLeft(decodeWorkerMessage(received[0])).pipe((o) => o._tag)).toBe("Some")
    expect(Either.getLeft(decodeHostMessage(received[0])).pipe((o) => o._tag)).toBe("Some")
  })
})
