import { deserialize, serialize } from "node:v8"

/*
 * The wire under the protocol. Frames travel over the fork IPC channel with
 * the default `json` serialization, which costs a few microseconds per message
 * where `advanced` (structured clone) costs ~10 µs more on each side in
 * Node 20. JSON is several times slower than structured clone for large
 * values, though (a 10 MiB string: ~110 ms against ~30 ms per round trip), so
 * a frame whose JSON would be larger than BULK_THRESHOLD goes on a second pipe
 * (the child's fd 4) as length-prefixed `v8.serialize` bytes, and a marker
 * takes its place on the IPC channel. The receiver delivers frames in IPC
 * order: a marker is replaced by the next bulk frame, and whatever follows
 * it waits until that frame has arrived.
 * ADR 0010 records the measurements.
 */

/** The fd of the bulk pipe in the worker. */
export const BULK_FD = 4

/** The argument that tells a worker it has a bulk pipe (a custom spawner may not give it one). */
export const BULK_ARG = "--plinth-bulk-fd=4"

/** Estimated JSON characters above which a frame goes on the bulk pipe. */
export const BULK_THRESHOLD = 64 * 1024

const BULK_MARKER = "plinth:bulk"

/**
 * Whether the value's JSON would exceed `limit` characters, estimated by a
 * walk that stops as soon as it does: a small message costs a few property
 * reads, a large one at most `limit` worth of them.
 */
export const exceedsJsonSize = (value: unknown, limit: number = BULK_THRESHOLD): boolean => {
  let budget = limit
  const visit = (v: unknown, depth: number): boolean => {
    if (typeof v === "string") return (budget -= v.length + 2) < 0
    if (typeof v !== "object" || v === null) return (budget -= 8) < 0
    if (ArrayBuffer.isView(v)) return (budget -= v.byteLength * 4) < 0
    // Deeper than this is not worth estimating (a cycle cannot be sent as JSON anyway).
    if (depth > 32) return false
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) if (visit(v[i], depth + 1)) return true
      return (budget -= v.length + 2) < 0
    }
    for (const key in v) {
      budget -= key.length + 4
      if (visit((v as Record<string, unknown>)[key], depth + 1)) return true
    }
    return budget < 0
  }
  try {
    return visit(value, 0)
  } catch {
    // A throwing getter: let the normal send report it.
    return false
  }
}

export interface BulkPipe {
  readonly write: (bytes: Uint8Array) => void
}

/**
 * The sending half: small frames go over IPC as they are, large ones as
 * bulk bytes plus a marker. Without a bulk pipe everything goes over IPC.
 */
export const makeSender =
  (sendIpc: (frame: unknown) => void, bulk: BulkPipe | undefined) =>
  (frame: unknown): void => {
    if (bulk === undefined || !exceedsJsonSize(frame)) return sendIpc(frame)
    const body = serialize(frame)
    const header = Buffer.allocUnsafe(4)
    header.writeUInt32BE(body.length, 0)
    bulk.write(header)
    bulk.write(body)
    sendIpc(BULK_MARKER)
  }

/**
 * The receiving half: call `ipc` with each IPC message and hand the bulk
 * pipe's data to `bulk`; frames come out of `deliver` in the order they were
 * sent. A bulk frame that does not deserialize is delivered as a message no
 * protocol Schema accepts, so the receiver rejects it like any other.
 */
export const makeReceiver = (deliver: (frame: unknown) => void) => {
  const held: Array<unknown> = []
  const arrived: Array<unknown> = []
  const drain = () => {
    while (held.length > 0) {
      if (held[0] === BULK_MARKER) {
        if (arrived.length === 0) return
        held.shift()
        deliver(arrived.shift())
      } else {
        deliver(held.shift())
      }
    }
  }
  let chunks: Array<Buffer> = []
  let size = 0
  let need = 0
  return {
    ipc: (frame: unknown): void => {
      // The common case, nothing held back: no queueing.
      if (held.length === 0 && frame !== BULK_MARKER) return deliver(frame)
      held.push(frame)
      drain()
    },
    bulk: (chunk: Buffer): void => {
      chunks.push(chunk)
      size += chunk.length
      for (;;) {
        if (need === 0) {
          if (size < 4) return
          const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)
          chunks = [all]
          need = 4 + all.readUInt32BE(0)
        }
        if (size < need) return
        const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)
        const body = all.subarray(4, need)
        const rest = all.subarray(need)
        chunks = rest.length > 0 ? [rest] : []
        size = rest.length
        need = 0
        let frame: unknown
        try {
          frame = deserialize(body)
        } catch (error) {
          frame = { _tag: "InvalidBulkFrame", detail: String(error) }
        }
        arrived.push(frame)
        drain()
      }
    },
  }
}
