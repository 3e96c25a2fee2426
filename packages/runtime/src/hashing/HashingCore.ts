/**
 * Part of the Hashing module: the file-hashing loop shared by the main thread
 * and the hashing worker threads. It depends on nothing but `node:crypto` and
 * `node:fs`, so a worker thread starts without loading Effect.
 */
// A namespace import: a named import of `hash` would fail to link on Node < 20.12.
import * as crypto from "node:crypto"
import { closeSync, constants, openSync, readSync } from "node:fs"

// A small file is hashed with one call: `crypto.hash` (Node 20.12+) where there is one, else a Hash object (engines says Node >= 20).
const digestOnce: (data: Uint8Array) => Uint8Array =
  typeof crypto.hash === "function"
    ? (data) => crypto.hash("sha256", data, "buffer")
    : (data) => crypto.createHash("sha256").update(data).digest()

/** Bytes per read: large enough that syscalls are noise, small enough to stay in cache while hashed. */
export const READ_CHUNK_BYTES = 1 << 20

export const DIGEST_BYTES = 32

/**
 * A batch of files hashed cooperatively by several threads. Every thread
 * claims the next unhashed file with an atomic increment, so the work splits
 * itself by bytes: a thread stuck on a big file simply claims fewer files.
 */
export interface SharedBatch {
  /** [0]: next file index to claim; [1]: files finished; [2]: non-zero once some thread failed. */
  readonly control: Int32Array
  /** `DIGEST_BYTES` per file, in input order. */
  readonly digests: Uint8Array
  /** [0]: bytes hashed so far by every thread, for progress reports. */
  readonly bytes: BigInt64Array
}

export const CLAIM_NEXT = 0
export const FINISHED_COUNT = 1
export const FAILED_FLAG = 2

export const makeSharedBatch = (fileCount: number): SharedBatch => ({
  control: new Int32Array(new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT)),
  digests: new Uint8Array(new SharedArrayBuffer(Math.max(1, fileCount) * DIGEST_BYTES)),
  bytes: new BigInt64Array(new SharedArrayBuffer(BigInt64Array.BYTES_PER_ELEMENT)),
})

/** A file that could not be read, as plain data so it can cross a thread boundary. */
export interface ReadFailure {
  readonly index: number
  readonly path: string
  readonly code: string
}

const readFailure = (index: number, path: string, error: unknown): ReadFailure => {
  const e = error as NodeJS.ErrnoException
  return { index, path, code: typeof e?.code === "string" ? e.code : String(error) }
}

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK

/** One thread's read buffer; reused for every file so the loop allocates nothing per file. */
export const makeReadBuffer = (): Buffer => Buffer.allocUnsafe(READ_CHUNK_BYTES)

/**
 * Writes the SHA-256 of one file's bytes into `out` at `offset` and returns how many bytes it read. A file that
 * fits in one read is hashed in one call; bigger files stream through the
 * buffer. A short read is confirmed as the end of the file before hashing, so a
 * file that grows while read is still hashed in full. Opened non-blocking: a
 * FIFO swapped in after the walk reads as empty (and fails verification)
 * instead of waiting for a writer forever.
 */
export const hashFileInto = (path: string, buffer: Buffer, out: Uint8Array, offset: number): number => {
  const fd = openSync(path, OPEN_FLAGS)
  try {
    let filled = 0
    for (;;) {
      const n = readSync(fd, buffer, filled, buffer.length - filled, null)
      if (n === 0) break
      filled += n
      if (filled === buffer.length) break
    }
    if (filled < buffer.length) {
      out.set(digestOnce(buffer.subarray(0, filled)), offset)
      return filled
    }
    const hash = crypto.createHash("sha256").update(buffer)
    let total = filled
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, null)
      if (n === 0) break
      total += n
      hash.update(n === buffer.length ? buffer : buffer.subarray(0, n))
    }
    out.set(hash.digest(), offset)
    return total
  } finally {
    closeSync(fd)
  }
}

/** What one thread did for a batch: how many files it hashed, and the file it could not read, if any. */
export interface ThreadShare {
  readonly hashed: number
  readonly failure: ReadFailure | undefined
}

/**
 * Claims and hashes files of a shared batch until none are left or some thread
 * failed. `beforeClaim` runs before each claim (the main thread uses it to call
 * for help once a batch proves big enough).
 */
export const hashClaimedFiles = (
  paths: ReadonlyArray<string>,
  batch: SharedBatch,
  buffer: Buffer,
  beforeClaim?: () => void,
): ThreadShare => {
  const { control, digests, bytes } = batch
  let hashed = 0
  while (Atomics.load(control, FAILED_FLAG) === 0) {
    beforeClaim?.()
    const index = Atomics.add(control, CLAIM_NEXT, 1)
    if (index >= paths.length) break
    try {
      Atomics.add(bytes, 0, BigInt(hashFileInto(paths[index]!, buffer, digests, index * DIGEST_BYTES)))
    } catch (error) {
      Atomics.store(control, FAILED_FLAG, 1)
      return { hashed, failure: readFailure(index, paths[index]!, error) }
    }
    hashed++
    Atomics.add(control, FINISHED_COUNT, 1)
  }
  return { hashed, failure: undefined }
}

/** True once every file of the batch has its digest written. */
export const batchComplete = (batch: SharedBatch, fileCount: number): boolean =>
  Atomics.load(batch.control, FINISHED_COUNT) >= fileCount

/** Paths travel to workers as one NUL-joined string: one copy instead of one per path (NUL cannot occur in a path). */
export const joinPaths = (paths: ReadonlyArray<string>): string => paths.join("\0")
export const splitPaths = (joined: string): ReadonlyArray<string> => (joined === "" ? [""] : joined.split("\0"))

/** Every digest as lower-case hex, in input order: one conversion for the whole batch, then cheap slices. */
export const digestsHex = (digests: Uint8Array, fileCount: number): Array<string> => {
  const hex = Buffer.from(digests.buffer, digests.byteOffset, fileCount * DIGEST_BYTES).toString("hex")
  const out: Array<string> = new Array(fileCount)
  for (let i = 0; i < fileCount; i++) out[i] = hex.slice(i * 2 * DIGEST_BYTES, (i + 1) * 2 * DIGEST_BYTES)
  return out
}

/** How far a batch has come: files finished and bytes read, by every thread together. */
export const batchProgress = (batch: SharedBatch): { readonly files: number; readonly bytes: number } => ({
  files: Atomics.load(batch.control, FINISHED_COUNT),
  bytes: Number(Atomics.load(batch.bytes, 0)),
})
