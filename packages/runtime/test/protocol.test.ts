import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import { decodeHostMessage, decodeWorkerMessage, encodeHostMessage, Invoke } from "../src/worker/Protocol.js"

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

  it("a hostile object with a throwing getter is a ProtocolError", () => {
    const hostile = Object.defineProperty({ _tag: "Invoke" }, "id", { get: () => { throw new Error("gotcha") }, enumerable: true })
    expect(Either.getLeft(decodeHostMessage(hostile)).pipe((o) => o._tag)).toBe("Some")
  })

  it("round-trips a well-formed message", () => {
    const sent = Invoke.make({ id: 7, action: "greet", input: { name: "Ann" }, streaming: false })
    expect(decodeHostMessage(encodeHostMessage(sent))).toEqual(Either.right(sent))
  })
})
