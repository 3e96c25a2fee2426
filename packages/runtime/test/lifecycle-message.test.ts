import { describe, expect, it } from "vitest"
import { Either } from "effect"
import { decodeHostMessage, encodeHostMessage, Lifecycle } from "../src/wire/Protocol.js"

describe("the Lifecycle message", () => {
  it("round-trips for each hook and refuses any other hook or a bad id as a ProtocolError", () => {
    for (const hook of ["enable", "disable"] as const) {
      const sent = Lifecycle.make({ id: 3, hook })
      expect(decodeHostMessage(encodeHostMessage(sent))).toEqual(Either.right(sent))
    }
    for (const bad of [{ _tag: "Lifecycle", id: 3, hook: "setup" }, { _tag: "Lifecycle", id: -1, hook: "enable" }, { _tag: "Lifecycle", id: 1, hook: "enable", extra: 1 }]) {
      const decoded = decodeHostMessage(bad)
      expect(Either.isLeft(decoded) && decoded.left._tag).toBe("ProtocolError")
    }
  })
})
