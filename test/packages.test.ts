import { execFileSync } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { VERSION } from "@plinth/cli"
import { repo } from "./support/cli.js"

/*
 * The five packages are published together: one version for all, each
 * depending on exactly that version of the others, and the CLI reporting it.
 */
const names = ["domain", "runtime", "cluster", "server", "cli"] as const
interface Manifest {
  readonly name: string
  readonly version: string
  readonly license?: string
  readonly engines?: { readonly node?: string }
  readonly publishConfig?: { readonly access?: string }
  readonly files?: ReadonlyArray<string>
  readonly exports?: Record<string, unknown>
  readonly dependencies?: Record<string, string>
}
const manifests = names.map((name) => JSON.parse(readFileSync(join(repo, "packages", name, "package.json"), "utf8")) as Manifest)
const version = manifests[0]!.version

describe("the published packages", () => {
  it("share one version, and depend on each other at exactly that version", () => {
    for (const manifest of manifests) {
      expect(manifest.version, manifest.name).toBe(version)
      for (const [dependency, range] of Object.entries(manifest.dependencies ?? {}))
        if (dependency.startsWith("@plinth/")) expect(range, `${manifest.name} -> ${dependency}`).toBe(version)
    }
    expect(VERSION).toBe(version)
  })

  it("each carry what a registry and a user need: licence, README, engines, public access, files, exports", () => {
    expect(existsSync(join(repo, "LICENSE"))).toBe(true)
    for (const [i, manifest] of manifests.entries()) {
      const dir = join(repo, "packages", names[i]!)
      expect(readFileSync(join(dir, "LICENSE"), "utf8")).toBe(readFileSync(join(repo, "LICENSE"), "utf8"))
      expect(readFileSync(join(dir, "README.md"), "utf8")).toMatch(new RegExp(`npm install (--save-dev )?${manifest.name}`))
      expect(manifest.license).toBe("MIT")
      expect(manifest.engines?.node).toBe(">=20")
      expect(manifest.publishConfig?.access).toBe("public")
      expect(manifest.files).toContain("dist")
      expect(Object.keys(manifest.exports ?? {})).toContain(".")
    }
  })

  it("`plinth --version` prints the packages' version on one line, as the compiled CLI reports it", () => {
    const launcher = execFileSync(process.execPath, [join(repo, "packages/cli/bin/plinth.js"), "--version"], { encoding: "utf8" })
    expect(launcher).toBe(`${version}\n`)
    const compiled = execFileSync(process.execPath, [join(repo, "packages/cli/dist/bin.js"), "--version"], { encoding: "utf8" })
    expect(compiled.trim()).toBe(version)
  })
})
