import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { decodeHostMessage, decodeWorkerMessage } from "../src/wire/Protocol.js"

// A ProtocolError's detail reaches people (`invoke` prints it): one line, paths and expectations, no schema tree.
describe("a refused protocol message is described in one line", () => {
  it("names the field and what was expected", () => {
    const refused = Either.getOrThrow(Either.flip(decodeWorkerMessage({ _tag: "Progress", id: "x", fraction: "half" })))
    expect(refused.detail).toMatch(/^worker message rejected: /)
    expect(refused.detail).not.toMatch(/[\n└├]|<->|Encoded side|Type side/)
    expect(refused.detail).toMatch(/(id|fraction): expected /)
  })

  it("an unknown message kind", () => {
    const refused = Either.getOrThrow(Either.flip(decodeHostMessage({ _tag: "Nope" })))
    expect(refused.detail).not.toMatch(/[\n└├]|<->|Encoded side|Type side/)
    expect(refused.detail).toMatch(/^host message rejected: /)
  })
})
