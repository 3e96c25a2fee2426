import { createHash } from "node:crypto"
import { Context, Data, Effect, Layer } from "effect"
import { digestSummary, formatDigest, type Digest, type MeasuredTree, type Sha256Hex, type TreeEntry } from "@plinth/domain"
import {
  batchComplete,
  batchProgress,
  DIGEST_BYTES,
  digestsHex,
  hashClaimedFiles,
  hashFileInto,
  makeReadBuffer,
  makeSharedBatch,
  type ReadFailure,
  type SharedBatch,
  type ThreadShare,
} from "./HashingCore.js"
import { enlistHelpers, poolAvailable, type HelpedBatch, type HelperOutcome } from "./HashingPool.js"
import { HashingProgress, type HashingProgressListener } from "./HashingProgress.js"

export { poolAvailable as hashingHelpersAvailable, terminateHashingPool } from "./HashingPool.js"
export * from "./HashingProgress.js"

export class FileReadFailed extends Data.TaggedError("FileReadFailed")<{
  readonly path: string
  readonly detail: string
}> {}

/**
 * One file of a tree to hash, and how to open it (Go dirhash's `open`): a file
 * on disk, or bytes already in memory (a worker's verified files).
 */
export type TreeFile =
  | { readonly path: string; readonly absolutePath: string }
  | { readonly path: string; readonly bytes: Uint8Array }

/**
 * The only place that computes SHA-256. Everything that needs a digest asks
 * this service, so the algorithm and its fast paths live in one module
 * (the `hashing/` folder: this file, the shared hashing loop, the worker pool
 * and the worker thread entry).
 */
export class Hashing extends Context.Tag("@plinth/runtime/Hashing")<
  Hashing,
  {
    readonly sha256: (data: Uint8Array | string) => Uint8Array
    readonly sha256Hex: (data: Uint8Array | string) => Sha256Hex
    /** SHA-256 of each file's bytes, in the order given. */
    readonly hashFiles: (absolutePaths: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<Sha256Hex>, FileReadFailed>
    /** The dirhash `h1:` digest of a tree, from its per-file hashes. */
    readonly treeDigest: (entries: Iterable<TreeEntry>) => Digest
    /**
     * Go dirhash's `Hash1(files, open)`: hashes every file of a tree (from
     * disk or from memory) and digests the tree, by the domain's one spec.
     * Disk verification and a worker's in-memory files both come through here.
     */
    readonly hashTree: (files: ReadonlyArray<TreeFile>) => Effect.Effect<MeasuredTree, FileReadFailed>
  }
>() {}

/**
 * Hashes files on the calling thread with synchronous reads into one reused
 * buffer. Per-file async reads cost a trip through the libuv pool per call and
 * top out at a few thousand small files a second; a tight synchronous loop does
 * tens of thousands. Throws the file system error of the first unreadable file.
 */
export const hashFilesSync = (paths: ReadonlyArray<string>): ReadonlyArray<Sha256Hex> => {
  const buffer = mainThreadBuffer()
  const digests = new Uint8Array(paths.length * DIGEST_BYTES)
  for (let i = 0; i < paths.length; i++) hashFileInto(paths[i]!, buffer, digests, i * DIGEST_BYTES)
  return hexDigests(digests, paths.length)
}

export interface HashFilesOptions {
  /**
   * Helper threads are called once the main thread has spent this long on a
   * batch with files still unclaimed: small batches never pay for a thread
   * hand-off, and the caller need not know file sizes up front.
   */
  readonly engageHelpersAfterMs?: number
  /** When false the main thread only coordinates and the helpers hash every file (to exercise that path). */
  readonly mainThreadHashes?: boolean
  /** Hears how the batch advances (files and bytes, all threads together). */
  readonly progress?: HashingProgressListener
}

export interface HashedFiles {
  readonly hashes: ReadonlyArray<Sha256Hex>
  /** How many of the files helper threads hashed (0 when the batch stayed on the main thread). */
  readonly hashedByHelpers: number
}

const DEFAULT_ENGAGE_HELPERS_AFTER_MS = 3

/** How often progress is read while the main thread only waits for helpers. */
const PROGRESS_POLL_MS = 100

/** Reports what a batch did since the last report, as deltas; undefined when nobody listens. */
const progressTicker = (batch: SharedBatch, listener: HashingProgressListener | undefined) => {
  if (listener === undefined || !listener.active) return undefined
  let files = 0
  let bytes = 0
  return () => {
    const now = batchProgress(batch)
    if (now.files === files && now.bytes === bytes) return
    listener.advanced(now.files - files, now.bytes - bytes)
    files = now.files
    bytes = now.bytes
  }
}

/**
 * Hashes files on the main thread and, for batches that take long enough, on
 * helper worker threads at the same time. Every thread claims the next file
 * from a shared counter and writes its digest into a shared buffer, so the
 * split follows the bytes actually read, not the file count.
 */
export const hashFilesInParallel = (
  paths: ReadonlyArray<string>,
  options: HashFilesOptions = {},
): Effect.Effect<HashedFiles, FileReadFailed> =>
  Effect.suspend(() => {
    const fileCount = paths.length
    const batch = makeSharedBatch(fileCount)
    const helpersPossible = fileCount > 1 && poolAvailable()
    options.progress?.batchStarted(fileCount)
    const tick = progressTicker(batch, options.progress)
    let helped: HelpedBatch | undefined
    let mainShare: ThreadShare = { hashed: 0, failure: undefined }
    if (options.mainThreadHashes === false && helpersPossible) {
      helped = enlistHelpers(paths, batch)
    } else {
      const engageAfterMs = options.engageHelpersAfterMs ?? DEFAULT_ENGAGE_HELPERS_AFTER_MS
      const started = performance.now()
      const callForHelp = () => {
        if (helped === undefined && performance.now() - started >= engageAfterMs) helped = enlistHelpers(paths, batch)
      }
      const beforeClaim = helpersPossible ? (tick === undefined ? callForHelp : () => (callForHelp(), tick())) : tick
      mainShare = hashClaimedFiles(paths, batch, mainThreadBuffer(), beforeClaim)
    }
    if (mainShare.failure !== undefined) return Effect.fail(fileReadFailed(mainShare.failure))
    if (batchComplete(batch, fileCount)) {
      tick?.()
      return Effect.succeed(finished(batch, fileCount, mainShare.hashed))
    }
    if (helped === undefined) return hashAllOnMainThread(paths)
    const helpers = helped
    return Effect.async<HashedFiles, FileReadFailed>((resume) => {
      // The main thread is idle now: read the helpers' progress from the shared batch now and then.
      const poll = tick === undefined ? undefined : setInterval(tick, PROGRESS_POLL_MS)
      const stopPolling = () => {
        if (poll !== undefined) clearInterval(poll)
      }
      const stopWaiting = helpers.awaitHelpers((outcomes) => {
        stopPolling()
        tick?.()
        resume(afterHelpersLeft(paths, batch, mainShare, outcomes))
      })
      return Effect.sync(() => {
        stopPolling()
        stopWaiting()
      })
    })
  })

const afterHelpersLeft = (
  paths: ReadonlyArray<string>,
  batch: SharedBatch,
  mainShare: ThreadShare,
  outcomes: ReadonlyArray<HelperOutcome>,
): Effect.Effect<HashedFiles, FileReadFailed> => {
  const failures = outcomes.flatMap((o) => (o !== "lost" && o.failure !== undefined ? [o.failure] : []))
  if (failures.length > 0) return Effect.fail(fileReadFailed(failures.reduce((a, b) => (b.index < a.index ? b : a))))
  // A helper that died may have claimed files it never finished: redo the batch here rather than guess.
  if (outcomes.includes("lost") || !batchComplete(batch, paths.length)) return hashAllOnMainThread(paths)
  return Effect.succeed(finished(batch, paths.length, mainShare.hashed))
}

const hashAllOnMainThread = (paths: ReadonlyArray<string>): Effect.Effect<HashedFiles, FileReadFailed> =>
  Effect.suspend(() => {
    const batch = makeSharedBatch(paths.length)
    const share = hashClaimedFiles(paths, batch, mainThreadBuffer())
    return share.failure !== undefined
      ? Effect.fail(fileReadFailed(share.failure))
      : Effect.succeed(finished(batch, paths.length, paths.length))
  })

const finished = (batch: SharedBatch, fileCount: number, hashedByMain: number): HashedFiles => ({
  hashes: hexDigests(batch.digests, fileCount),
  hashedByHelpers: fileCount - hashedByMain,
})

const hexDigests = (digests: Uint8Array, fileCount: number): ReadonlyArray<Sha256Hex> =>
  digestsHex(digests, fileCount) as Array<Sha256Hex>

const fileReadFailed = (failure: ReadFailure) => new FileReadFailed({ path: failure.path, detail: failure.code })

// Hashing on the main thread never re-enters (the loop is synchronous), so one buffer serves every batch.
let sharedMainBuffer: Buffer | undefined
const mainThreadBuffer = () => (sharedMainBuffer ??= makeReadBuffer())

const sha256 = (data: Uint8Array | string): Uint8Array => createHash("sha256").update(data).digest()

/** The SHA-256 of bytes or a string (UTF-8), in hex: the one way the runtime hashes what is in memory. */
export const sha256Hex = (data: Uint8Array | string): Sha256Hex => createHash("sha256").update(data).digest("hex") as Sha256Hex

const treeDigest = (entries: Iterable<TreeEntry>): Digest => formatDigest(sha256(digestSummary(entries)))

/** Per-file hashes in the order given: files on disk in one (possibly parallel) batch, bytes in memory directly. */
const hashTreeFiles = (
  files: ReadonlyArray<TreeFile>,
  progress: HashingProgressListener,
): Effect.Effect<ReadonlyArray<Sha256Hex>, FileReadFailed> => {
  const onDisk: Array<number> = []
  const hashes: Array<Sha256Hex> = new Array(files.length)
  for (let i = 0; i < files.length; i++) {
    const file = files[i]!
    if ("bytes" in file) hashes[i] = sha256Hex(file.bytes)
    else onDisk.push(i)
  }
  if (onDisk.length === 0) return Effect.succeed(hashes)
  const absolutePaths = onDisk.map((i) => (files[i] as { readonly absolutePath: string }).absolutePath)
  return Effect.map(hashFilesInParallel(absolutePaths, { progress }), ({ hashes: diskHashes }) => {
    for (let j = 0; j < onDisk.length; j++) hashes[onDisk[j]!] = diskHashes[j]!
    return hashes
  })
}

const hashTree = (files: ReadonlyArray<TreeFile>): Effect.Effect<MeasuredTree, FileReadFailed> =>
  Effect.map(Effect.flatMap(HashingProgress, (progress) => hashTreeFiles(files, progress)), (hashes) => {
    const entries: Array<TreeEntry> = new Array(files.length)
    for (let i = 0; i < files.length; i++) entries[i] = { path: files[i]!.path, sha256: hashes[i]! }
    return { entries, digest: treeDigest(entries) }
  })

/** The service itself, for a caller that builds its context without layers (`VerifyLive`). */
export const hashingService = Hashing.of({
  sha256,
  sha256Hex,
  hashFiles: (paths) =>
    Effect.flatMap(HashingProgress, (progress) => Effect.map(hashFilesInParallel(paths, { progress }), (hashed) => hashed.hashes)),
  treeDigest,
  hashTree,
})

export const HashingLive = Layer.succeed(Hashing, hashingService)
