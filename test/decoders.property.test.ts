import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { Effect, Either } from "effect"
import { decodeLockFile, decodeManifest, encodeLockFile, type LockFile } from "@plinth/domain"
import { LockStore, PlinthLive } from "@plinth/runtime"
import { tempDir } from "./support/plugins.js"

const arbitraryText = fc.oneof(
  fc.string(),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.anything().map((v) => {
    try {
      return JSON.stringify(v) ?? "undefined"
    } catch {
      return "{"
    }
  }),
  fc.nat({ max: 5000 }).map((n) => "[".repeat(n) + "]".repeat(n)),
  fc.nat({ max: 5000 }).map((n) => '{"a":'.repeat(n) + "1" + "}".repeat(n)),
)

const id = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?$/)
const hex = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString("hex"))
const path = fc.array(fc.stringMatching(/^[a-zA-Z0-9 ._-]{1,10}$/).filter((s) => s !== "." && s !== ".."), { minLength: 1, maxLength: 3 }).map((p) => p.join("/"))
const lockFile: fc.Arbitrary<LockFile> = fc
  .dictionary(
    id,
    fc.record({
      digest: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => `h1:${Buffer.from(b).toString("base64")}`),
      files: fc.dictionary(path, hex, { maxKeys: 5 }),
    }),
    { maxKeys: 6 },
  )
  .map((plugins) => ({ lockVersion: 1, plugins }) as unknown as LockFile)

describe("decoders never throw", () => {
  it("the manifest decoder returns a typed result for any input", () => {
    fc.assert(
      fc.property(arbitraryText, (text) => {
        const result = decodeManifest(text)
        expect(Either.isEither(result)).toBe(true)
        if (Either.isLeft(result)) expect(typeof result.left).toBe("string")
      }),
      { numRuns: 500 },
    )
  })

  it("the lock decoder returns a typed result for any input", () => {
    fc.assert(
      fc.property(arbitraryText, (text) => {
        const result = decodeLockFile(text)
        expect(Either.isEither(result)).toBe(true)
        if (Either.isLeft(result)) expect(result.left.length).toBeGreaterThan(0)
      }),
      { numRuns: 500 },
    )
  })

  it("the manifest decoder accepts every well-formed manifest and refuses unknown keys", () => {
    const manifest = fc.record({
      id,
      version: fc.tuple(fc.nat(99), fc.nat(99), fc.nat(99)).map(([a, b, c]) => `${a}.${b}.${c}`),
      description: fc.string({ maxLength: 100 }),
      entry: path.map((p) => `${p}.js`),
    })
    fc.assert(
      fc.property(manifest, fc.stringMatching(/^[a-z]{1,8}$/), (m, key) => {
        expect(Either.getOrThrow(decodeManifest(JSON.stringify(m)))).toEqual(m)
        const withExtra = { ...m, [`x${key}`]: 1 }
        expect(Either.isLeft(decodeManifest(JSON.stringify(withExtra)))).toBe(true)
      }),
    )
  })
})

describe("the lock round-trips", () => {
  it("encode then decode gives back the same lock", () => {
    fc.assert(
      fc.property(lockFile, (lock) => {
        expect(Either.getOrThrow(decodeLockFile(encodeLockFile(lock)))).toEqual(lock)
      }),
    )
  })

  it("encoding is canonical: key order in memory does not change a byte", () => {
    fc.assert(
      fc.property(lockFile, (lock) => {
        const reversed = { ...lock, plugins: Object.fromEntries(Object.entries(lock.plugins).reverse()) } as LockFile
        expect(encodeLockFile(reversed)).toBe(encodeLockFile(lock))
      }),
    )
  })

  it("LockStore write then read through real files gives back the same lock", async () => {
    const dir = tempDir("plinth-lockstore-")
    await fc.assert(
      fc.asyncProperty(lockFile, async (lock) => {
        const file = join(dir, "PLUGINS.lock")
        const read = await Effect.runPromise(
          Effect.gen(function* () {
            const store = yield* LockStore
            yield* store.write(file, lock)
            return yield* store.read(file)
          }).pipe(Effect.provide(PlinthLive)),
        )
        expect(read).toEqual(lock)
        expect(readFileSync(file, "utf8")).toBe(encodeLockFile(lock))
      }),
      { numRuns: 30 },
    )
  })
})
