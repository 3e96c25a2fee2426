import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import {
  HashingProgress,
  hashingProgressListener,
  hashFilesInParallel,
  hashingHelpersAvailable,
  measureTree,
  PlinthLive,
  type HashingProgressSnapshot,
} from "@plinth/runtime"

// The compiled package, so helper threads run from `dist` as they do for users.

let root: string
let sizes: Array<number>

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "plinth-progress-"))
  sizes = []
  for (let i = 0; i < 300; i++) {
    const size = (i * 7919) % 50_000
    mkdirSync(join(root, `d${i % 10}`), { recursive: true })
    writeFileSync(join(root, `d${i % 10}`, `f${i}.js`), Buffer.alloc(size, i))
    sizes.push(size)
  }
  // One file bigger than a read buffer, so the streaming path counts its bytes too.
  writeFileSync(join(root, "big.bin"), Buffer.alloc(3 * 1024 * 1024 + 5, 1))
  sizes.push(3 * 1024 * 1024 + 5)
})
afterAll(() => rmSync(root, { recursive: true, force: true }))

const totalBytes = () => sizes.reduce((a, b) => a + b, 0)

const recording = () => {
  const snapshots: Array<HashingProgressSnapshot> = []
  return { snapshots, listener: hashingProgressListener((s) => snapshots.push(s)) }
}

describe("hashing reports progress through the optional HashingProgress channel", () => {
  it.effect("a tree's files and bytes, counted up to the whole tree, never backwards", () =>
    Effect.gen(function* () {
      const { snapshots, listener } = recording()
      const measured = yield* measureTree(root, "progress").pipe(Effect.provideService(HashingProgress, listener))
      expect(measured.entries.length).toBe(sizes.length)
      const last = snapshots.at(-1)!
      expect(last).toEqual({ filesHashed: sizes.length, filesTotal: sizes.length, bytesHashed: totalBytes() })
      for (let i = 1; i < snapshots.length; i++) {
        expect(snapshots[i]!.filesHashed).toBeGreaterThanOrEqual(snapshots[i - 1]!.filesHashed)
        expect(snapshots[i]!.bytesHashed).toBeGreaterThanOrEqual(snapshots[i - 1]!.bytesHashed)
      }
      // Reported while hashing, not only at the end.
      expect(snapshots.some((s) => s.filesHashed > 0 && s.filesHashed < sizes.length)).toBe(true)
    }).pipe(Effect.provide(PlinthLive)),
  )

  it.effect("files hashed by helper threads alone are counted too", () =>
    Effect.gen(function* () {
      expect(hashingHelpersAvailable()).toBe(true)
      const paths = sizes.map((_, i) => (i < 300 ? join(root, `d${i % 10}`, `f${i}.js`) : join(root, "big.bin")))
      const { snapshots, listener } = recording()
      const hashed = yield* hashFilesInParallel(paths, { mainThreadHashes: false, progress: listener })
      expect(hashed.hashedByHelpers).toBe(paths.length)
      expect(snapshots.at(-1)).toEqual({ filesHashed: paths.length, filesTotal: paths.length, bytesHashed: totalBytes() })
    }),
  )

  it("a planned total is shown from the start; batches that announce more raise it", () => {
    const { snapshots, listener } = recording()
    listener.planned(10)
    listener.batchStarted(4)
    listener.advanced(4, 100)
    listener.batchStarted(8)
    expect(snapshots).toEqual([
      { filesHashed: 0, filesTotal: 10, bytesHashed: 0 },
      { filesHashed: 4, filesTotal: 10, bytesHashed: 100 },
      { filesHashed: 4, filesTotal: 12, bytesHashed: 100 },
    ])
  })

  it.effect("without a listener, hashing hears nothing and works as before", () =>
    Effect.gen(function* () {
      const silent = yield* HashingProgress
      expect(silent.active).toBe(false)
      const measured = yield* measureTree(root, "progress")
      expect(measured.entries.length).toBe(sizes.length)
    }).pipe(Effect.provide(PlinthLive)),
  )
})
