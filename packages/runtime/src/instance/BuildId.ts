import { existsSync, readFileSync, realpathSync } from "node:fs"
import { createRequire } from "node:module"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import type { Digest } from "@plinth/domain"
import { Hashing, hashFilesSync, HashingLive } from "../hashing/Hashing.js"

/*
 * Whether a bundle is the build of the files next to it, decided by content,
 * never by file times: npm does not keep mtimes when it packs and installs a
 * package, so an installed copy once looked stale and silently ran the slower
 * unbundled worker (ADR 0018).
 *
 * The bundle script writes `build.json` next to the bundle: the compiled files
 * it bundled, each named by its package and its path inside that package, and
 * the build id, the tree digest (the lock's `h1:` digest) of those files.
 * A host recomputes the id from the files it would otherwise run, resolved
 * through Node's package resolution from where the host is installed; the
 * bundle is current only when both ids are equal.
 */

export const BUILD_FILE = "build.json"

/** One input of a bundle: `package` (e.g. `@plinth/runtime`, `effect`) and a file inside it. */
export interface BuildInput {
  readonly package: string
  readonly file: string
}

export interface BuildRecord {
  readonly id: Digest
  readonly inputs: ReadonlyArray<BuildInput>
}

/**
 * Where `name` is installed as seen from `from`: Node's node_modules lookup,
 * done by hand because a package's `exports` may hide its package.json.
 */
export const packageRootFrom = (from: string, name: string): string => {
  for (const modules of createRequire(from).resolve.paths(name) ?? []) {
    const root = join(modules, name)
    if (existsSync(join(root, "package.json"))) return realpathSync(root)
  }
  throw new Error(`cannot find the package ${name} from ${from}`)
}

let runtimeRoot: string | undefined

/**
 * The root of `@plinth/runtime`: two folders up from this module (`dist/instance`
 * or `src/instance`), or, when this code is bundled into another package (the
 * CLI), where that package finds it installed.
 */
export const runtimePackageRoot = (): string => {
  if (runtimeRoot !== undefined) return runtimeRoot
  const own = fileURLToPath(new URL("../../", import.meta.url))
  try {
    if ((JSON.parse(readFileSync(join(own, "package.json"), "utf8")) as { name?: unknown }).name === "@plinth/runtime") return (runtimeRoot = own)
  } catch {
    // Not the runtime's own layout: bundled elsewhere.
  }
  return (runtimeRoot = packageRootFrom(import.meta.url, "@plinth/runtime"))
}

/**
 * The build id of `inputs` as installed now: packages are resolved from
 * `resolveFrom` (a file path or URL inside the package that depends on them).
 * Throws when an input cannot be found or read.
 */
export const buildIdOf = (inputs: ReadonlyArray<BuildInput>, resolveFrom: string): Digest => {
  const roots = new Map<string, string>()
  // A dependency of a dependency may sit below that package (npm nests it when versions clash).
  const rootOf = (name: string) => {
    let root = roots.get(name)
    if (root !== undefined) return root
    for (const from of [resolveFrom, ...[...roots.values()].map((r) => join(r, "package.json"))]) {
      try {
        root = packageRootFrom(from, name)
        break
      } catch {
        // Try the next place.
      }
    }
    if (root === undefined) throw new Error(`cannot find the package ${name} from ${resolveFrom}`)
    roots.set(name, root)
    return root
  }
  // Plinth's own packages first, so their dependencies are looked up below them too.
  for (const input of inputs) if (input.package.startsWith("@plinth/")) rootOf(input.package)
  const hashes = hashFilesSync(inputs.map((input) => join(rootOf(input.package), input.file)))
  const entries = inputs.map((input, i) => ({ path: `${input.package}/${input.file}`, sha256: hashes[i]! }))
  return Effect.runSync(Effect.map(Hashing, (hashing) => hashing.treeDigest(entries)).pipe(Effect.provide(HashingLive)))
}

export const readBuildRecord = (bundleDir: string): BuildRecord => JSON.parse(readFileSync(join(bundleDir, BUILD_FILE), "utf8")) as BuildRecord

/**
 * Whether the bundle in `bundleDir` was built from exactly the files a host
 * resolving from `resolveFrom` would otherwise run. False when either side is
 * missing or unreadable: the caller then runs the unbundled files.
 */
export const bundleIsCurrent = (bundleDir: string, resolveFrom: string): boolean => {
  try {
    const record = readBuildRecord(bundleDir)
    return record.inputs.length > 0 && buildIdOf(record.inputs, resolveFrom) === record.id
  } catch {
    return false
  }
}
