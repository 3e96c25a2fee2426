import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import { encodeFrame, makeFrameReader } from "../src/wire/Framing.js"
import { heldChunkId, HeldChunk, makeChunkArena, openHeldChunk } from "../src/wire/HeldChunks.js"

const body = (text: string) => Buffer.from(text, "utf8")
const held = (text: string) => new HeldChunk(body(text), undefined)
const chunkText = (id: number, value: unknown) => encodeFrame({ _tag: "Chunk", id, value }).text

describe("held chunks", () => {
  it.prop("a chunk as the worker writes it is recognised by its id, and opens to its value", [fc.nat({ max: Number.MAX_SAFE_INTEGER }), fc.jsonValue()], ([id, value]) => {
    const text = chunkText(id, value)
    expect(heldChunkId(body(text))).toBe(id)
    const opened = openHeldChunk(held(text), id)
    expect(opened).toEqual(Either.right(JSON.parse(JSON.stringify(value))))
  })

  it("anything not spelled exactly like a worker's chunk is left to the parsed path", () => {
    for (const text of [
      `{"_tag":"Success","id":1,"value":1}`,
      `{"id":1,"_tag":"Chunk","value":1}`,
      `{"_tag":"Chunk", "id":1,"value":1}`,
      `{"_tag":"Chunk","id":01,"value":1}`,
      `{"_tag":"Chunk","id":-1,"value":1}`,
      `{"_tag":"Chunk","id":1.5,"value":1}`,
      `{"_tag":"Chunk","id":"1","value":1}`,
      `{"_tag":"Chunk","id":99999999999999999,"value":1}`,
      `{"_tag":"Chunk","id":1,"valu":1}`,
      `{"_tag":"Chunk","id":1,"value":`,
      `[{"_tag":"Chunk","id":1,"value":1}]`,
      ``,
    ]) {
      expect(heldChunkId(body(text)), text).toBeUndefined()
    }
  })

  it("a frame that began like a chunk but does not parse, or decodes to anything else, is a ProtocolError when it is opened", () => {
    const cases: Array<[string, number, RegExp]> = [
      [`{"_tag":"Chunk","id":3,"value":"unterminated}`, 3, /not JSON/],
      [`{"_tag":"Chunk","id":3,"value":1,"id":4}`, 3, /Chunk for call 4/],
      [`{"_tag":"Chunk","id":3,"value":1,"extra":true}`, 3, /rejected/],
      [`{"_tag":"Chunk","id":3,"value":1,"_tag":"Success"}`, 3, /Success/],
      [`{"_tag":"Chunk","id":3,"value":${"[".repeat(300)}${"]".repeat(300)}}`, 3, /nests deeper/],
    ]
    for (const [text, id, detail] of cases) {
      expect(heldChunkId(body(text)), text).toBe(id)
      const opened = openHeldChunk(held(text), id)
      expect(Either.isLeft(opened), text).toBe(true)
      if (Either.isLeft(opened)) {
        expect(opened.left._tag).toBe("ProtocolError")
        expect(opened.left.detail).toMatch(detail)
      }
    }
  })

  it("a large ASCII frame and a large frame with other characters open to the same values as JSON.parse gives", () => {
    const ascii = chunkText(1, "a".repeat(1100 * 1024))
    const accented = chunkText(1, "é€😀".repeat(300 * 1024))
    for (const text of [ascii, accented]) {
      const arena = makeChunkArena(8 * 1024 * 1024)
      const opened = openHeldChunk(arena.hold(body(text)), 1)
      expect(opened).toEqual(Either.right(JSON.parse(text).value))
    }
  })

  it("the arena copies each frame, reuses a slab once it is released, and keeps no more than it may", () => {
    const arena = makeChunkArena(3 * 64 * 1024)
    const big = (fill: string) => Buffer.alloc(100 * 1024, fill)
    const source = big("a")
    const first = arena.hold(source)
    source.fill("b")
    // A copy: the reader's buffer is reused after the claim.
    expect(first.body.every((byte) => byte === 0x61)).toBe(true)
    expect(first.body.length).toBe(100 * 1024)
    arena.release(first)
    const second = arena.hold(big("c"))
    expect(second.slab).toBe(first.slab)
    expect(second.body.every((byte) => byte === 0x63)).toBe(true)
    // Slabs of 128 KiB: with 192 KiB kept at most, only one of two released slabs is kept.
    const third = arena.hold(big("d"))
    arena.release(second)
    arena.release(third)
    const [a, b] = [arena.hold(big("e")), arena.hold(big("f"))]
    expect([a.slab, b.slab].filter((slab) => slab === second.slab || slab === third.slab)).toHaveLength(1)
    // Small frames are plain copies, no slab.
    expect(arena.hold(Buffer.from("tiny")).slab).toBeUndefined()
    arena.release(a)
    arena.clear()
    expect(arena.hold(big("g")).slab).not.toBe(a.slab)
  })

  it("a reader with a claim hands it whole frames however they are split, and decodes only the frames it leaves", () =>
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.record({ _tag: fc.constant("Chunk"), id: fc.nat(9), value: fc.jsonValue() }), fc.jsonValue()), { maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 4 }),
        (messages, cuts) => {
          const bytes = Buffer.concat(
            messages.map((message) => {
              const { text, bytes } = encodeFrame(message)
              const out = Buffer.alloc(4 + bytes)
              out.writeUInt32BE(bytes)
              out.write(text, 4)
              return out
            }),
          )
          const seen: Array<unknown> = []
          const reader = makeFrameReader(
            1 << 20,
            (text) => seen.push(["parsed", JSON.parse(text)]),
            () => seen.push("error"),
            (frame) => {
              if (heldChunkId(frame) === undefined) return false
              seen.push(["held", JSON.parse(frame.toString("utf8"))])
              return true
            },
          )
          for (let at = 0, i = 0; at < bytes.length; i++) {
            const next = Math.min(bytes.length, at + cuts[i % cuts.length]!)
            reader.push(bytes.subarray(at, next))
            at = next
          }
          const expected = messages.map((message) => {
            const copy = JSON.parse(JSON.stringify(message))
            return [typeof message === "object" && message !== null && (message as { _tag?: unknown })._tag === "Chunk" && "value" in message ? "held" : "parsed", copy]
          })
          expect(seen).toEqual(expected)
        },
      ),
      { numRuns: 200 },
    ))
})
