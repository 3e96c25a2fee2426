import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { BUILD_FILE, buildIdOf, bundleIsCurrent, packageRootFrom, readBuildRecord, type BuildInput } from "../src/instance/BuildId.js"
import { workerBundled, workerEntryPath } from "../src/instance/Sandbox.js"

/*
 * Whether a bundle is current is decided by the content of the files it was
 * built from, as a host resolves them from where it is installed; file times
 * play no part (npm does not keep them when it packs and installs).
 */
const root = mkdtempSync(join(tmpdir(), "plinth-build-id-"))
afterAll(() => rmSync(root, { recursive: true, force: true }))

/** An installed project: a host package, the runtime and a third-party package in node_modules, and a bundle. */
const project = (name: string) => {
  const dir = join(root, name)
  const write = (path: string, content: string) => {
    mkdirSync(join(dir, path, ".."), { recursive: true })
    writeFileSync(join(dir, path), content)
  }
  write("node_modules/@plinth/runtime/package.json", JSON.stringify({ name: "@plinth/runtime", version: "1.0.0" }))
  write("node_modules/@plinth/runtime/dist/process/bootstrap.js", "export const start = 1\n")
  // A package whose `exports` hides its package.json is still found.
  write("node_modules/effect/package.json", JSON.stringify({ name: "effect", version: "3.22.4", exports: { ".": "./index.js" } }))
  write("host/package.json", JSON.stringify({ name: "host" }))
  const inputs: ReadonlyArray<BuildInput> = [
    { package: "@plinth/runtime", file: "dist/process/bootstrap.js" },
    { package: "effect", file: "package.json" },
  ]
  const from = join(dir, "host", "package.json")
  const bundle = join(dir, "bundle")
  mkdirSync(bundle)
  writeFileSync(join(bundle, BUILD_FILE), JSON.stringify({ id: buildIdOf(inputs, from), inputs }))
  return { dir, from, bundle, write }
}

describe("the build id of a bundle", () => {
  it("holds for the files it was built from, whatever their file times", () => {
    const { dir, from, bundle } = project("times")
    expect(bundleIsCurrent(bundle, from)).toBe(true)
    // As after `npm install`: inputs newer than the bundle, or older.
    utimesSync(join(dir, "node_modules/@plinth/runtime/dist/process/bootstrap.js"), new Date(), new Date(Date.now() + 3_600_000))
    utimesSync(join(bundle, BUILD_FILE), new Date(0), new Date(0))
    expect(bundleIsCurrent(bundle, from)).toBe(true)
  })

  it("fails once a compiled input changes, so the host runs the compiled files instead of a stale bundle", () => {
    const { from, bundle, write } = project("changed")
    write("node_modules/@plinth/runtime/dist/process/bootstrap.js", "export const start = 2\n")
    expect(bundleIsCurrent(bundle, from)).toBe(false)
  })

  it("fails when another version of a bundled package is installed", () => {
    const { from, bundle, write } = project("upgraded")
    write("node_modules/effect/package.json", JSON.stringify({ name: "effect", version: "3.23.0", exports: { ".": "./index.js" } }))
    expect(bundleIsCurrent(bundle, from)).toBe(false)
  })

  it("fails when an input or the record is missing", () => {
    const missingInput = project("missing-input")
    rmSync(join(missingInput.dir, "node_modules/@plinth/runtime/dist/process/bootstrap.js"))
    expect(bundleIsCurrent(missingInput.bundle, missingInput.from)).toBe(false)
    const missingRecord = project("missing-record")
    rmSync(join(missingRecord.bundle, BUILD_FILE))
    expect(bundleIsCurrent(missingRecord.bundle, missingRecord.from)).toBe(false)
  })

  it("holds for the real worker bundle copied with its packages as npm installs them (new file times), and the host starts workers from it", () => {
    // `npm test` bundles the runtime first.
    expect(workerBundled()).toBe(true)
    expect(workerEntryPath()).toMatch(/worker-bundle[\\/]bootstrap\.cjs$/)
    const runtime = join(workerEntryPath(), "..", "..", "..")
    const copy = join(root, "installed", "node_modules")
    for (const name of ["runtime", "domain"]) {
      // cpSync gives every copied file a new mtime, as `npm install` does.
      cpSync(join(runtime, "..", name, "dist"), join(copy, "@plinth", name, "dist"), { recursive: true })
      cpSync(join(runtime, "..", name, "package.json"), join(copy, "@plinth", name, "package.json"))
    }
    const bundle = join(copy, "@plinth/runtime/dist/worker-bundle")
    for (const input of readBuildRecord(bundle).inputs) {
      if (input.package.startsWith("@plinth/") || existsSync(join(copy, input.package))) continue
      mkdirSync(join(copy, input.package, ".."), { recursive: true })
      symlinkSync(packageRootFrom(join(runtime, "package.json"), input.package), join(copy, input.package))
    }
    const from = join(copy, "@plinth/runtime/package.json")
    expect(bundleIsCurrent(bundle, from)).toBe(true)
    writeFileSync(join(copy, "@plinth/domain/dist/index.js"), "export {}\n")
    expect(bundleIsCurrent(bundle, from)).toBe(false)
  })
})
