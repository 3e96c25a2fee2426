import { join } from "node:path"
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { measureTree, PlinthLive, readVerifiedFiles } from "@plinth/runtime"

const plugin = (files: Record<string, string>) => {
  const dir = join(mkdtempSync(join(tmpdir(), "plinth-verified-")), "p")
  mkdirSync(dir)
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content)
  return dir
}

const lockEntryOf = (dir: string) =>
  Effect.map(measureTree(dir, "p"), ({ entries, digest }) => ({
    digest,
    files: Object.fromEntries(entries.map((e) => [e.path, e.sha256])),
  }))

describe("readVerifiedFiles", () => {
  it.effect("returns exactly the locked bytes", () =>
    Effect.gen(function* () {
      const dir = plugin({ "index.js": "export default 1\n", "b.txt": "bee" })
      const files = yield* readVerifiedFiles({ id: "p", dir }, yield* lockEntryOf(dir))
      expect(files.map((f) => [f.path, Buffer.from(f.bytes).toString()])).toEqual([
        ["b.txt", "bee"],
        ["index.js", "export default 1\n"],
      ])
    }).pipe(Effect.provide(PlinthLive)),
  )

  it.effect("refuses a plugin larger than the in-memory cap before reading past it", () =>
    Effect.gen(function* () {
      const dir = plugin({ "index.js": "x".repeat(600), "data.bin": "y".repeat(600) })
      const error = yield* Effect.flip(readVerifiedFiles({ id: "p", dir }, yield* lockEntryOf(dir), 1000))
      expect(error._tag).toBe("SchemaViolation")
      expect(error._tag === "SchemaViolation" && error.detail).toContain("larger than 1000 bytes")
    }).pipe(Effect.provide(PlinthLive)),
  )
})
