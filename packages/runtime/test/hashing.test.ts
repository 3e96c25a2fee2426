import { spawnSync } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { digestSummary, formatDigest, type Sha256Hex, type TreeEntry } from "@plinth/domain"
import {
  FileReadFailed,
  Hashing,
  HashingLive,
  hashFilesInParallel,
  hashFilesSync,
  hashingHelpersAvailable,
  measureTree,
  PlinthLive,
} from "@plinth/runtime"

// These tests import the compiled package, so the worker threads run from `dist` as they do for users.

const MiB = 1024 * 1024
const READ_CHUNK = MiB

let root: string

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "plinth-hashing-"))
})
afterAll(() => rmSync(root, { recursive: true, force: true }))

/** Deterministic bytes that differ from file to file. */
const bytes = (size: number, seed: number) => {
  const out = Buffer.allocUnsafe(size)
  let x = (seed * 2654435761) >>> 0 || 1
  for (let i = 0; i < size; i++) {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    out[i] = x & 0xff
  }
  return out
}

/** Writes files of the given sizes under a fresh folder; returns their absolute paths in order. */
const writeFiles = (name: string, sizes: ReadonlyArray<number>) => {
  const dir = join(root, name)
  return sizes.map((size, i) => {
    const path = join(dir, `d${i % 7}`, `file ${i}.bin`)
    mkdirSync(dirname(path), { recursive: true })
    writeFileSync(path, bytes(size, i + 1))
    return path
  })
}

/** The independent reference: coreutils `sha256sum`. */
const sha256sumOf = (paths: ReadonlyArray<string>): ReadonlyArray<string> => {
  const result = spawnSync("sha256sum", ["--", ...paths], { encoding: "utf8", maxBuffer: 64 * MiB })
  expect(result.status).toBe(0)
  return result.stdout
    .trim()
    .split("\n")
    .map((line) => line.slice(0, 64))
}

// Empty files, files around and well above one read chunk, and many small files.
const mixedSizes = [0, 1, 55, 4096, READ_CHUNK - 1, READ_CHUNK, READ_CHUNK + 1, 2 * READ_CHUNK + 12345, 0, 3 * READ_CHUNK]
const manySizes = Array.from({ length: 400 }, (_, i) => (i % 50 === 0 ? 0 : (i * 7919) % 20_000))

describe("Hashing: files", () => {
  it("finds the compiled worker script, so big batches can use helper threads", () => {
    expect(hashingHelpersAvailable()).toBe(true)
  })

  it.effect("helper threads alone give the same hashes as the main thread and as sha256sum", () =>
    Effect.gen(function* () {
      const paths = writeFiles("helpers-only", [...mixedSizes, ...manySizes])
      const hashed = yield* hashFilesInParallel(paths, { mainThreadHashes: false })
      expect(hashed.hashedByHelpers).toBe(paths.length)
      expect(hashed.hashes).toEqual(hashFilesSync(paths))
      expect(hashed.hashes).toEqual(sha256sumOf(paths))
    }),
  )

  it.effect("the main thread and helpers together give sha256sum's hashes, in input order", () =>
    Effect.gen(function* () {
      const paths = writeFiles("shared", [...manySizes, ...mixedSizes]).reverse()
      const hashed = yield* hashFilesInParallel(paths, { engageHelpersAfterMs: 0 })
      expect(hashed.hashes).toEqual(sha256sumOf(paths))
    }),
  )

  it.effect("a batch below the threshold stays on the main thread and still matches sha256sum", () =>
    Effect.gen(function* () {
      const [single] = writeFiles("single", [READ_CHUNK * 2 + 1])
      const one = yield* hashFilesInParallel([single!])
      expect(one.hashedByHelpers).toBe(0)
      expect(one.hashes).toEqual(sha256sumOf([single!]))
      const small = writeFiles("small", [0, 10, READ_CHUNK + 3])
      const viaService = yield* Effect.flatMap(Hashing, (h) => h.hashFiles(small)).pipe(Effect.provide(HashingLive))
      expect(viaService).toEqual(sha256sumOf(small))
      expect(yield* hashFilesInParallel([])).toEqual({ hashes: [], hashedByHelpers: 0 })
    }),
  )

  it.effect("the service gives sha256sum's hashes for a batch big enough to call helpers", () =>
    Effect.gen(function* () {
      const paths = writeFiles("service-big", [...mixedSizes, ...mixedSizes, ...manySizes])
      const hashes = yield* Effect.flatMap(Hashing, (h) => h.hashFiles(paths)).pipe(Effect.provide(HashingLive))
      expect(hashes).toEqual(sha256sumOf(paths))
    }),
  )
})

describe("Hashing: unreadable files are typed failures", () => {
  const expectMissing = (failure: unknown, missing: string) => {
    expect(failure).toBeInstanceOf(FileReadFailed)
    expect(failure).toMatchObject({ _tag: "FileReadFailed", path: missing, detail: "ENOENT" })
  }

  it.effect("on the main thread", () =>
    Effect.gen(function* () {
      const [present] = writeFiles("missing-main", [100])
      const missing = join(root, "missing-main", "not-there.bin")
      expectMissing(yield* Effect.flip(hashFilesInParallel([present!, missing])), missing)
      const viaService = yield* Effect.flatMap(Hashing, (h) => h.hashFiles([missing])).pipe(Effect.provide(HashingLive), Effect.flip)
      expectMissing(viaService, missing)
    }),
  )

  it.effect("on helper threads", () =>
    Effect.gen(function* () {
      const paths = writeFiles("missing-helpers", manySizes)
      const missing = join(root, "missing-helpers", "not-there.bin")
      const withMissing = [...paths.slice(0, 200), missing, ...paths.slice(200)]
      expectMissing(yield* Effect.flip(hashFilesInParallel(withMissing, { mainThreadHashes: false })), missing)
      expectMissing(yield* Effect.flip(hashFilesInParallel(withMissing, { engageHelpersAfterMs: 0 })), missing)
    }),
  )

  it.effect("a FIFO where a file was expected is read without waiting for a writer (empty, so it fails verification)", () =>
    Effect.gen(function* () {
      const fifo = join(root, "a-fifo")
      expect(spawnSync("mkfifo", [fifo]).status).toBe(0)
      const [digest] = yield* Effect.flatMap(Hashing, (h) => h.hashFiles([fifo])).pipe(Effect.provide(HashingLive))
      expect(digest).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }),
  )

  it.effect("a folder where a file was expected", () =>
    Effect.gen(function* () {
      const folder = join(root, "a-folder")
      mkdirSync(folder, { recursive: true })
      const failure = yield* Effect.flip(hashFilesInParallel([folder]))
      expect(failure).toMatchObject({ _tag: "FileReadFailed", path: folder, detail: "EISDIR" })
    }),
  )
})

describe("Hashing: tree digest", () => {
  const hex = (n: number) => n.toString(16).padStart(64, "0") as Sha256Hex

  it.effect("equals the domain's digest, including paths whose UTF-16 and UTF-8 orders differ", () =>
    Effect.gen(function* () {
      const hashing = yield* Hashing
      const asciiOnly: Array<TreeEntry> = ["b/x.js", "a-c.js", "a/b.js", "A.js", "a.js"].map((path, i) => ({ path, sha256: hex(i) }))
      // U+FF5E sorts before an emoji (surrogate pair) in UTF-16, after it in UTF-8.
      const mixed: Array<TreeEntry> = ["\uFF5E.js", "\u{1F600}.js", "\uE000.js", "é.js", "e.js"].map((path, i) => ({ path, sha256: hex(i) }))
      for (const entries of [asciiOnly, mixed, []]) {
        expect(hashing.treeDigest(entries)).toBe(formatDigest(hashing.sha256(digestSummary(entries))))
        expect(hashing.treeDigest([...entries].reverse())).toBe(hashing.treeDigest(entries))
      }
    }).pipe(Effect.provide(HashingLive)),
  )

  it.effect("measureTree over a real folder equals the coreutils pipeline", () =>
    Effect.gen(function* () {
      const dir = join(root, "tree")
      writeFiles("tree", [...mixedSizes, ...manySizes])
      const { digest, entries } = yield* measureTree(dir, "tree")
      const pipeline = spawnSync(
        "sh",
        ["-c", "find . -type f -printf '%P\\0' | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64 | xxd -r -p | base64"],
        { cwd: dir, encoding: "utf8", env: { ...process.env, LC_ALL: "C" } },
      )
      expect(pipeline.status).toBe(0)
      expect(entries.length).toBe(mixedSizes.length + manySizes.length)
      expect(digest).toBe(`h1:${pipeline.stdout.trim()}`)
    }).pipe(Effect.provide(PlinthLive)),
  )
})

describe("Hashing: helper threads never hold a process open", () => {
  it("a script that hashes a big batch with helpers exits by itself", () => {
    const paths = writeFiles("exit", manySizes)
    const runtimeEntry = createRequire(import.meta.url).resolve("@plinth/runtime")
    const script = `
      import { Effect } from "effect"
      const { hashFilesInParallel } = await import(${JSON.stringify(runtimeEntry)})
      const paths = JSON.parse(process.argv[1])
      const hashed = await Effect.runPromise(hashFilesInParallel(paths, { mainThreadHashes: false }))
      console.log(hashed.hashedByHelpers)
    `
    // The timeout only guards against a hang; nothing here measures speed.
    const result = spawnSync(process.execPath, ["--input-type=module", "-e", script, JSON.stringify(paths)], {
      cwd: dirname(runtimeEntry),
      encoding: "utf8",
      timeout: 20_000,
    })
    expect(result.stderr).toBe("")
    expect(result.status).toBe(0)
    expect(result.stdout.trim()).toBe(String(paths.length))
  })

  it("a script whose main thread calls helpers in mid-batch exits without waiting for the pool's idle timer", () => {
    const paths = writeFiles("exit-mid-batch", manySizes)
    const runtimeEntry = createRequire(import.meta.url).resolve("@plinth/runtime")
    const script = `
      import { Effect } from "effect"
      const { hashFilesInParallel } = await import(${JSON.stringify(runtimeEntry)})
      const paths = JSON.parse(process.argv[1])
      const hashed = await Effect.runPromise(hashFilesInParallel(paths, { engageHelpersAfterMs: 0 }))
      console.log(hashed.hashes.length)
    `
    // The pool ends idle helpers after 10 s; a helper that held the process would keep it past this timeout.
    const result = spawnSync(process.execPath, ["--input-type=module", "-e", script, JSON.stringify(paths)], {
      cwd: dirname(runtimeEntry),
      encoding: "utf8",
      timeout: 8_000,
    })
    expect(result.signal).toBeNull()
    expect(result.status).toBe(0)
    expect(result.stdout.trim()).toBe(String(paths.length))
  })
})
