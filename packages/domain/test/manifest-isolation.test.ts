import { describe, expect, it } from "vitest"
import { Either } from "effect"
import { decodeManifest, DEFAULT_MEMORY_MIB } from "../src/Manifest.js"

const manifest = (extra: Record<string, unknown>) =>
  JSON.stringify({ id: "p", version: "1.0.0", description: "d", entry: "index.js", ...extra })

describe("the manifest's network grant and resources", () => {
  it("accepts permissions.network and resources.memoryMiB", () => {
    const decoded = decodeManifest(manifest({ permissions: { network: true }, resources: { memoryMiB: 64 } }))
    expect(Either.getOrThrow(decoded)).toMatchObject({ permissions: { network: true }, resources: { memoryMiB: 64 } })
    expect(DEFAULT_MEMORY_MIB).toBe(512)
  })

  it("refuses a heap cap that is not a whole number of MiB between 16 and 65536, and unknown resources", () => {
    for (const resources of [{ memoryMiB: 8 }, { memoryMiB: 70000 }, { memoryMiB: 64.5 }, { memoryMiB: "64" }, { cpus: 2 }]) {
      expect(Either.isLeft(decodeManifest(manifest({ resources })))).toBe(true)
    }
  })
})
