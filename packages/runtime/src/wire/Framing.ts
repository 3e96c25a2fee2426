/*
 * The channel under the protocol: one duplex stream per worker (the child's
 * fd 3, a socketpair the host creates with stdio "pipe"), carrying frames in
 * both directions. A frame is a 4-byte big-endian length and that many bytes
 * of UTF-8 JSON: one message, or a batch of them (a JSON array, see the
 * writer). Node's own IPC channel is not used:
 * it buffers an incoming line without bound, so a worker writing a
 * newline-free stream grows its host until a string allocation throws
 * (ADR 0010). Here every frame has a cap per direction, checked on its header
 * before its body is held, so a receiver holds at most the cap (plus one read)
 * whatever the sender writes.
 *
 * This module is light on purpose (no Effect, no domain): the worker's
 * bootstrap uses it to report ready before the runtime is even parsed.
 */

/** The child's fd that carries the channel. */
export const CHANNEL_FD = 3

export interface FrameCaps {
  /** Largest frame the host sends and the worker accepts, in bytes of JSON (the `Load` frame carries the plugin's files). */
  readonly toWorker: number
  /** Largest frame a worker sends and the host accepts, in bytes of JSON: a result, a chunk, a failure. */
  readonly fromWorker: number
}

const MiB = 1024 * 1024

/**
 * Defaults: a worker's results and chunks up to 64 MiB of JSON each (a 10 MiB
 * string is ~10 MiB); the host's frames up to 512 MiB, because `Load` carries
 * the plugin's verified files as base64 (up to 256 MiB of files, see
 * VerifiedFiles.ts).
 */
export const defaultFrameCaps: FrameCaps = { toWorker: 512 * MiB, fromWorker: 64 * MiB }

/** The largest length a header can state. */
const MAX_HEADER = 0xffff_ffff

const FRAME_CAPS_ARG = "--plinth-frame-caps="

/** The worker argument that tells it the caps (it must know them before the first frame arrives). */
export const frameCapsArg = (caps: FrameCaps): string => `${FRAME_CAPS_ARG}${caps.toWorker},${caps.fromWorker}`

const validCap = (n: number) => Number.isSafeInteger(n) && n > 0 && n <= MAX_HEADER

/** The caps a worker was started with, or the defaults. */
export const frameCapsFromArgv = (argv: ReadonlyArray<string>): FrameCaps => {
  const arg = argv.find((a) => a.startsWith(FRAME_CAPS_ARG))
  const [toWorker, fromWorker] = (arg?.slice(FRAME_CAPS_ARG.length).split(",") ?? []).map(Number)
  return {
    toWorker: toWorker !== undefined && validCap(toWorker) ? toWorker : defaultFrameCaps.toWorker,
    fromWorker: fromWorker !== undefined && validCap(fromWorker) ? fromWorker : defaultFrameCaps.fromWorker,
  }
}

/** Caps as configured (a partial override of the defaults), refusing values a header cannot state. */
export const resolveFrameCaps = (caps: Partial<FrameCaps> | undefined): FrameCaps => {
  const resolved = { ...defaultFrameCaps, ...caps }
  for (const [name, value] of Object.entries(resolved)) {
    if (!validCap(value)) throw new RangeError(`maxFrameBytes.${name} must be an integer from 1 to ${MAX_HEADER}, not ${value}`)
  }
  return resolved
}

/** One message, serialized: its JSON text and that text's length in UTF-8 bytes. */
export interface EncodedFrame {
  readonly text: string
  readonly bytes: number
}

/** Serializes a message; throws what JSON.stringify throws (check values with `jsonValueProblem` first). */
export const encodeFrame = (message: unknown): EncodedFrame => {
  const text = JSON.stringify(message)
  return { text, bytes: Buffer.byteLength(text, "utf8") }
}

/**
 * The sending half. Messages queued in one tick go out in one write, and
 * consecutive ones travel as one frame holding a JSON array of them (a
 * batch, never larger than `batchCap`): each write and each frame has a
 * fixed cost on both sides (a syscall, an event, a parse), so under load
 * this keeps the channel near raw speed; a lone message pays one microtask.
 * A frame sent with `solo` travels on its own: the receiver accounts for a
 * stream chunk by the size of its frame.
 */
export const makeFrameWriter = (
  write: (bytes: Buffer) => void,
  batchCap: number = Number.POSITIVE_INFINITY,
): ((frame: EncodedFrame, solo?: boolean) => void) => {
  let queue: Array<EncodedFrame> = []
  let solos: Array<boolean> = []
  const flush = () => {
    const frames = queue
    const alone = solos
    queue = []
    solos = []
    const out: Array<EncodedFrame> = []
    let batch: Array<EncodedFrame> = []
    let batchBytes = 1
    const close = () => {
      if (batch.length === 1) out.push(batch[0]!)
      else if (batch.length > 1) out.push({ text: `[${batch.map((f) => f.text).join(",")}]`, bytes: batchBytes })
      batch = []
      batchBytes = 1
    }
    for (let i = 0; i < frames.length; i++) {
      const frame = frames[i]!
      if (alone[i]) {
        close()
        out.push(frame)
        continue
      }
      if (batch.length > 0 && batchBytes + frame.bytes + 1 > batchCap) close()
      batch.push(frame)
      batchBytes += frame.bytes + 1
    }
    close()
    let size = 0
    for (const frame of out) size += 4 + frame.bytes
    const bytes = Buffer.allocUnsafe(size)
    let at = 0
    for (const frame of out) {
      bytes.writeUInt32BE(frame.bytes, at)
      at += 4
      at += bytes.write(frame.text, at, frame.bytes, "utf8")
    }
    write(bytes)
  }
  return (frame, solo = false) => {
    solos.push(solo)
    if (queue.push(frame) === 1) queueMicrotask(flush)
  }
}

/** Frames up to this size are assembled in one buffer the reader keeps and reuses. */
const SCRATCH_RETAINED = 4 * MiB

/**
 * The receiving half: feed it the stream's bytes as they arrive; it calls
 * `onFrame` with each frame's text (and its size in bytes), in order. A header
 * stating more than `maxFrameBytes` calls `onError` once, before any of that
 * frame's body is held, and the reader ignores everything after it (the
 * stream cannot be resynchronised; the caller ends it). Bytes held between
 * calls: less than one header, or one frame's body so far (under the cap).
 *
 * A frame split across reads is copied into a buffer the reader reuses
 * (frames up to 4 MiB; a larger one gets its own): a steady stream of large
 * frames then allocates nothing per frame but its text, which keeps the
 * host's memory flat instead of leaving a trail of freed buffers behind.
 */
export const makeFrameReader = (
  maxFrameBytes: number,
  onFrame: (text: string, bytes: number) => void,
  onError: (detail: string) => void,
): { readonly push: (chunk: Buffer) => void; readonly stop: () => void } => {
  const header = Buffer.alloc(4)
  let headerFill = 0
  let scratch = Buffer.alloc(0)
  /** The body length being read, or -1 while reading a header. */
  let need = -1
  let body: Buffer | undefined
  let bodyFill = 0
  let stopped = false
  const stop = () => {
    stopped = true
    body = undefined
    scratch = Buffer.alloc(0)
  }
  const deliver = (text: string, bytes: number) => {
    need = -1
    body = undefined
    onFrame(text, bytes)
  }
  const push = (chunk: Buffer) => {
    let at = 0
    while (at < chunk.length && !stopped) {
      if (need < 0) {
        let length: number
        if (headerFill === 0 && chunk.length - at >= 4) {
          length = chunk.readUInt32BE(at)
          at += 4
        } else {
          const n = Math.min(4 - headerFill, chunk.length - at)
          chunk.copy(header, headerFill, at, at + n)
          headerFill += n
          at += n
          if (headerFill < 4) return
          headerFill = 0
          length = header.readUInt32BE(0)
        }
        if (length > maxFrameBytes) {
          stop()
          return onError(`a frame header states ${length} bytes, over the cap of ${maxFrameBytes}`)
        }
        need = length
        // The whole frame in this read: decoded where it is, no copy.
        if (chunk.length - at >= need) {
          const end = at + need
          const text = chunk.toString("utf8", at, end)
          at = end
          deliver(text, length)
          continue
        }
        if (need <= scratch.length) body = scratch
        else if (need <= SCRATCH_RETAINED) body = scratch = Buffer.allocUnsafe(Math.min(SCRATCH_RETAINED, Math.max(need, 2 * scratch.length)))
        else body = Buffer.allocUnsafe(need)
        bodyFill = 0
      }
      const n = Math.min(need - bodyFill, chunk.length - at)
      chunk.copy(body!, bodyFill, at, at + n)
      bodyFill += n
      at += n
      if (bodyFill === need) deliver(body!.toString("utf8", 0, need), need)
    }
  }
  return { push, stop }
}
