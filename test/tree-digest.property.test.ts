import { createHash } from "node:crypto"
import { execFileSync } from "node:child_process"
import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { Effect } from "effect"
import type { Sha256Hex, TreeEntry } from "@plinth/domain"
import { Hashing, HashingLive, measureTree, PlinthLive } from "@plinth/runtime"
import { join } from "node:path"
import { tempDir, writeFile } from "./support/plugins.js"

/** An independent reference: the dirhash algorithm written out from its definition. */
const referenceDigest = (files: ReadonlyArray<readonly [string, Uint8Array]>) => {
  const lines = [...files]
    .map(([path, content]) => ({ path, hex: createHash("sha256").update(content).digest("hex") }))
    .sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)))
    .map(({ path, hex }) => `${hex}  ${path}\n`)
    .join("")
  return "h1:" + createHash("sha256").update(lines).digest("base64")
}

// Name segments mixing spaces, UTF-8, dots and dashes; '.' and '..' are not names.
const segment = fc
  .stringMatching(/^[a-zA-Z0-9 ._\-éü日本語🙂]{1,12}$/u)
  .filter((s) => s !== "." && s !== ".." && s.trim() === s && s.trim().length > 0)
const relativePath = fc.array(segment, { minLength: 1, maxLength: 3 }).map((parts) => parts.join("/"))

/** A tree as (path, bytes) pairs where no file path is also a folder of another file. */
const tree = fc
  .uniqueArray(fc.tuple(relativePath, fc.uint8Array({ maxLength: 300 })), { minLength: 1, maxLength: 12, selector: ([p]) => p })
  .filter((files) => files.every(([p]) => !files.some(([q]) => q.startsWith(p + "/"))))

const digestOnDisk = (files: ReadonlyArray<readonly [string, Uint8Array]>) => {
  const dir = tempDir("plinth-digest-")
  for (const [path, content] of files) writeFile(join(dir, path), content)
  return Effect.runPromise(measureTree(dir, "generated").pipe(Effect.provide(PlinthLive)))
}

describe("tree digest", () => {
  it("equals an independent reference computation over generated trees", async () => {
    await fc.assert(
      fc.asyncProperty(tree, async (files) => {
        const { digest } = await digestOnDisk(files)
        expect(digest).toBe(referenceDigest(files))
      }),
      { numRuns: 60 },
    )
  })

  it("is one spec: files on disk and the same bytes in memory hash to the same tree", async () => {
    const hashing = Effect.runSync(Effect.provide(Hashing, HashingLive))
    await fc.assert(
      fc.asyncProperty(tree, async (files) => {
        const onDisk = await digestOnDisk(files)
        const inMemory = await Effect.runPromise(hashing.hashTree(files.map(([path, bytes]) => ({ path, bytes }))))
        expect(inMemory.digest).toBe(onDisk.digest)
        expect(inMemory.digest).toBe(referenceDigest(files))
      }),
      { numRuns: 40 },
    )
  })

  it("does not depend on the order files were created", async () => {
    await fc.assert(
      fc.asyncProperty(
        tree.chain((files) => fc.tuple(fc.constant(files), fc.shuffledSubarray(files, { minLength: files.length }))),
        async ([files, shuffled]) => {
          const [a, b] = await Promise.all([digestOnDisk(files), digestOnDisk(shuffled)])
          expect(a.digest).toBe(b.digest)
        },
      ),
      { numRuns: 40 },
    )
  })

  it("does not depend on the order entries are listed", () => {
    const hashing = Effect.runSync(Effect.provide(Hashing, HashingLive))
    const entry = fc.record({ path: relativePath, sha256: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString("hex") as Sha256Hex) })
    fc.assert(
      fc.property(
        fc.uniqueArray(entry, { selector: (e) => e.path, maxLength: 30 }).chain((entries) =>
          fc.tuple(fc.constant(entries), fc.shuffledSubarray(entries, { minLength: entries.length })),
        ),
        ([entries, shuffled]: [Array<TreeEntry>, Array<TreeEntry>]) => {
          expect(hashing.treeDigest(shuffled)).toBe(hashing.treeDigest(entries))
        },
      ),
    )
  })

  it("tells LF content from CRLF content", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.stringMatching(/^[a-z ]{0,20}$/), { minLength: 2, maxLength: 6 }), async (lines) => {
        const lf = await digestOnDisk([["file.txt", Buffer.from(lines.join("\n"))]])
        const crlf = await digestOnDisk([["file.txt", Buffer.from(lines.join("\r\n"))]])
        expect(lf.digest).not.toBe(crlf.digest)
      }),
      { numRuns: 20 },
    )
  })

  it("can be recomputed with coreutils, as the README shows", async () => {
    const files: Array<[string, Uint8Array]> = [
      ["index.js", Buffer.from("export default 1\n")],
      ["lib/with space.js", Buffer.from("x\r\n")],
      ["lib/ünï-cödé.mjs", Buffer.from("")],
      ["a.b-c/d", Buffer.from([0, 1, 2, 255])],
    ]
    const dir = tempDir("plinth-coreutils-")
    for (const [path, content] of files) writeFile(join(dir, path), content)
    const script =
      "find -L . -type f -printf '%P\\n' | LC_ALL=C sort | xargs -d '\\n' sha256sum | sha256sum | cut -c1-64 | tr a-f A-F | basenc -d --base16 | base64"
    const coreutils = execFileSync("bash", ["-c", script], { cwd: dir, encoding: "utf8" }).trim()
    const { digest } = await Effect.runPromise(measureTree(dir, "fixture").pipe(Effect.provide(PlinthLive)))
    expect(digest).toBe(`h1:${coreutils}`)
  })
})
