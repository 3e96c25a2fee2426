import { isAscii } from "node:buffer"
import { Either } from "effect"
import { ProtocolError } from "@plinth/domain"
import { decodeWorkerMessage, parseFrame } from "./Protocol.js"

/*
 * Stream chunks the host holds as bytes until its consumer takes them.
 *
 * A chunk parsed on arrival is a string (or a tree) on the V8 heap that waits
 * in the stream's window, then in the consumer's hands: a large one is alive
 * at nearly every young-generation collection and is promoted, and promoted
 * garbage is only freed when the old generation reaches a multiple of the
 * live heap (measured: of 400 chunks of 1 MiB, 438 MiB promoted). Held as
 * bytes, a waiting chunk is one Buffer outside the V8 heap, and its text and
 * value exist only from the consumer's pull to the consumer being done.
 *
 * Nothing is trusted any later: the envelope is read from the bytes on
 * arrival (which call, so that the call must be in flight, be a stream and
 * have credit, exactly as for a parsed chunk), and the whole frame is parsed
 * and decoded like any other frame when the consumer pulls it; a frame that
 * does not parse, or decodes to anything but this chunk, is a ProtocolError.
 */

/** The frame's start as the worker writes a chunk (`encodeFrame({ _tag, id, value })`); any other spelling takes the parsed path. */
const PREFIX = Buffer.from(`{"_tag":"Chunk","id":`)
const VALUE = Buffer.from(`,"value":`)
/** Digits of the largest safe integer. */
const MAX_DIGITS = 16

/** The call id of a frame written as a chunk is, or undefined if the frame does not start like one. */
export const heldChunkId = (body: Buffer): number | undefined => {
  if (body.length < PREFIX.length + 1 + VALUE.length + 2 || body.compare(PREFIX, 0, PREFIX.length, 0, PREFIX.length) !== 0) return undefined
  let at = PREFIX.length
  let id = 0
  const first = body[at]!
  // JSON numbers have no leading zeros: "0" alone, or a non-zero digit first.
  if (first === 0x30) at++
  else {
    while (at < body.length && at - PREFIX.length < MAX_DIGITS && body[at]! >= 0x30 && body[at]! <= 0x39) id = id * 10 + (body[at++]! - 0x30)
    if (at === PREFIX.length) return undefined
  }
  if (at + VALUE.length + 2 > body.length || !Number.isSafeInteger(id)) return undefined
  if (body.compare(VALUE, 0, VALUE.length, at, at + VALUE.length) !== 0) return undefined
  return id
}

/** A chunk's frame, copied out of the reader's buffers; `slab` is the arena's buffer it sits in, if any. */
export class HeldChunk {
  constructor(
    readonly body: Buffer,
    readonly slab: Buffer | undefined,
  ) {}
}

/** Frames from this size on are copied into slabs the arena reuses; smaller ones into Node's own pooled buffers. */
const SLAB_STEP = 64 * 1024

export interface ChunkArena {
  /** Copies a frame's body (the reader reuses its buffers). */
  readonly hold: (body: Buffer) => HeldChunk
  /** Takes back a held chunk's slab once its bytes have been read; the chunk must not be read again. */
  readonly release: (held: HeldChunk) => void
  /** Lets every kept slab go (when no stream is open). */
  readonly clear: () => void
}

/**
 * Where held chunks' bytes live. A large frame gets a slab (a multiple of
 * 64 KiB) that goes back to the arena once the consumer has taken the chunk,
 * and the next frame reuses it: without this every large chunk would leave a
 * buffer behind, and one that waited in the window through a young-generation
 * collection is freed only with the old generation, however long that takes.
 * At most `maxRetained` bytes of slabs are kept between uses.
 */
export const makeChunkArena = (maxRetained: number): ChunkArena => {
  let free: Array<Buffer> = []
  let retained = 0
  return {
    hold: (body) => {
      if (body.length < SLAB_STEP) return new HeldChunk(Buffer.from(body), undefined)
      let best = -1
      for (let i = 0; i < free.length; i++) {
        const size = free[i]!.length
        if (size >= body.length && (best < 0 || size < free[best]!.length)) best = i
      }
      let slab: Buffer
      if (best >= 0) {
        slab = free[best]!
        free.splice(best, 1)
        retained -= slab.length
      } else slab = Buffer.allocUnsafeSlow(Math.ceil(body.length / SLAB_STEP) * SLAB_STEP)
      body.copy(slab)
      return new HeldChunk(slab.subarray(0, body.length), slab)
    },
    release: (held) => {
      if (held.slab === undefined || retained + held.slab.length > maxRetained) return
      free.push(held.slab)
      retained += held.slab.length
    },
    clear: () => {
      free = []
      retained = 0
    },
  }
}

/**
 * A frame's text. ASCII reads the same as Latin-1 and UTF-8, and Node makes a
 * Latin-1 string of about a megabyte or more an external string (its bytes
 * outside the V8 heap, freed with it), so a large ASCII frame's text takes no
 * young-generation space: only its value does, and collections come half as
 * often.
 */
const frameText = (body: Buffer): string => (body.length >= SLAB_STEP && isAscii(body) ? body.toString("latin1") : body.toString("utf8"))

/** The chunk's value, once the frame parses and decodes to a chunk of call `id`, or the protocol error it is. */
export const openHeldChunk = (held: HeldChunk, id: number): Either.Either<unknown, ProtocolError> => {
  const parsed = parseFrame(frameText(held.body))
  if (Either.isLeft(parsed)) return parsed
  const messages = parsed.right
  if (messages.length !== 1) return Either.left(new ProtocolError({ detail: `a Chunk for call ${id} inside a batch` }))
  const decoded = decodeWorkerMessage(messages[0])
  if (Either.isLeft(decoded)) return decoded
  const message = decoded.right
  if (message._tag !== "Chunk" || message.id !== id) {
    return Either.left(new ProtocolError({ detail: `a frame that began as a Chunk for call ${id} decoded to ${message._tag} for call ${"id" in message ? message.id : "(none)"}` }))
  }
  return Either.right(message.value)
}
