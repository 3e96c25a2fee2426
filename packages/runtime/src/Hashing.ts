import { createHash } from "node:crypto"
import { closeSync, openSync, readSync } from "node:fs"
import { Context, Data, Effect, Layer } from "effect"
import { digestSummary, formatDigest, type Digest, type Sha256Hex, type TreeEntry } from "@plinth/domain"

export class FileReadFailed extends Data.TaggedError("FileReadFailed")<{
  readonly path: string
  readonly detail: string
}> {}

/**
 * The only place that computes SHA-256. Everything that needs a digest asks
 * this service, so the algorithm and its fast paths live in one module.
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
  }
>() {}

const CHUNK = 1 << 20

/**
 * Hashes files with synchronous reads into one reused buffer. Per-file async
 * reads cost a trip through the libuv pool per call and top out at a few
 * thousand small files a second; a tight synchronous loop does tens of thousands.
 */
export const hashFilesSync = (paths: ReadonlyArray<string>): ReadonlyArray<Sha256Hex> => {
  const buffer = Buffer.allocUnsafe(CHUNK)
  const out: Array<Sha256Hex> = new Array(paths.length)
  for (let i = 0; i < paths.length; i++) {
    const fd = openSync(paths[i]!, "r")
    try {
      const hash = createHash("sha256")
      for (;;) {
        const n = readSync(fd, buffer, 0, CHUNK, null)
        if (n === 0) break
        hash.update(n === CHUNK ? buffer : buffer.subarray(0, n))
      }
      out[i] = hash.digest("hex") as Sha256Hex
    } finally {
      closeSync(fd)
    }
  }
  return out
}

const sha256 = (data: Uint8Array | string): Uint8Array => createHash("sha256").update(data).digest()

export const HashingLive = Layer.succeed(Hashing, {
  sha256,
  sha256Hex: (data) => createHash("sha256").update(data).digest("hex") as Sha256Hex,
  hashFiles: (paths) =>
    Effect.try({
      try: () => hashFilesSync(paths),
      catch: (error) => {
        const e = error as NodeJS.ErrnoException
        return new FileReadFailed({ path: e.path ?? "?", detail: e.code ?? String(error) })
      },
    }),
  treeDigest: (entries) => formatDigest(sha256(digestSummary(entries))),
})
