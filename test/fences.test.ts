import { readdirSync, readFileSync } from "node:fs"
import { join, posix } from "node:path"
import { describe, expect, it } from "vitest"

const root = join(import.meta.dirname, "..")
const sources = (pkg: string) =>
  readdirSync(join(root, "packages", pkg, "src"), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts"))
    .map((f) => ({ file: `packages/${pkg}/src/${f}`, text: readFileSync(join(root, "packages", pkg, "src", f), "utf8") }))

const imports = (text: string) => [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^"']*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g)].map((m) => m[1] ?? m[2])

describe("architecture fences", () => {
  it("the loader neither imports node:crypto nor calls JSON.parse", () => {
    for (const file of ["Loader.ts", "Manifests.ts", "LockStore.ts", "PluginVerifier.ts"]) {
      const text = readFileSync(join(root, "packages/runtime/src/loading", file), "utf8")
      expect(imports(text), file).not.toContain("node:crypto")
      expect(imports(text), file).not.toContain("crypto")
      expect(text, file).not.toMatch(/JSON\s*\.\s*parse/)
    }
  })

  it("the loading folder and the CLI parse JSON text only through the domain's capped decoder (caps, duplicate-key refusal)", () => {
    // The module hooks run on Node's loader thread and read the package.json files of a plugin's own
    // node_modules as Node's resolver would (JSON.parse, last key wins): they resolve, they do not review.
    const onLoaderThread = "packages/runtime/src/loading/VerifiedModuleHooks.ts"
    const readers = [
      ...sources("runtime").filter(({ file }) => file.startsWith("packages/runtime/src/loading/") && file !== onLoaderThread),
      ...sources("cli"),
    ]
    expect(readers.length).toBeGreaterThan(0)
    for (const { file, text } of readers) expect(text, file).not.toMatch(/JSON\s*\.\s*parse/)
  })

  it("only the hashing folder imports node:crypto in the runtime", () => {
    const offenders = sources("runtime")
      .filter(({ file, text }) => !file.startsWith("packages/runtime/src/hashing/") && imports(text).some((i) => i === "node:crypto" || i === "crypto"))
      .map(({ file }) => file)
    expect(offenders).toEqual([])
  })

  it("the domain imports nothing from node:* and nothing from runtime or cli", () => {
    for (const { file, text } of sources("domain")) {
      for (const specifier of imports(text)) {
        expect(specifier, file).not.toMatch(/^node:|^@plinth\/(runtime|cli)/)
        // jsonc-parser: a pure JSON scanner (no node:* use), the duplicate-key check of the one JSON decoder.
        expect(specifier, file).toMatch(/^effect(\/|$)|^jsonc-parser$|^\.\.?\//)
        // A relative import stays inside the domain's own sources (folders per concern import each other).
        if (specifier?.startsWith(".")) expect(posix.join(posix.dirname(file), specifier), file).toMatch(/^packages\/domain\/src\//)
      }
    }
  })

  it("the runtime never imports the cli", () => {
    for (const { file, text } of sources("runtime")) expect(imports(text).filter((i) => i?.startsWith("@plinth/cli")), file).toEqual([])
  })

  it("the worker process side imports nothing from the host side: only the wire is shared", () => {
    const processSide = sources("runtime").filter(({ file }) => file.startsWith("packages/runtime/src/process/"))
    expect(processSide.length).toBeGreaterThan(0)
    for (const { file, text } of processSide) {
      for (const specifier of imports(text).filter((i) => i?.startsWith("."))) {
        expect(specifier, file).toMatch(/^\.\/|^\.\.\/wire\//)
      }
    }
  })

  it("the wire imports nothing from either side", () => {
    for (const { file, text } of sources("runtime").filter(({ file }) => file.startsWith("packages/runtime/src/wire/"))) {
      for (const specifier of imports(text).filter((i) => i?.startsWith("."))) expect(specifier, file).toMatch(/^\.\/[^/]+$/)
    }
  })

  it("the fence sees imports at all (it would catch a violation)", () => {
    expect(imports('import { createHash } from "node:crypto"\nconst x = 1')).toEqual(["node:crypto"])
    expect(imports('const m = await import("node:crypto")')).toEqual(["node:crypto"])
  })
})
