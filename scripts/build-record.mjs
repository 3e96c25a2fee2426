// Writes `build.json` next to a bundle: the files it was built from, each named
// by its package and its path inside that package, their SHA-256, and the
// build id (their tree digest). A host decides from it, by content and never
// by file times, whether the bundle is the build of the files installed next
// to it (packages/runtime/src/instance/BuildId.ts; ADR 0018).
import { createHash } from "node:crypto"
import { readFileSync, renameSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const repoDir = join(dirname(fileURLToPath(import.meta.url)), "..")
const workspacePackages = { domain: "@plinth/domain", runtime: "@plinth/runtime", cluster: "@plinth/cluster", server: "@plinth/server", cli: "@plinth/cli" }

/**
 * The package and file of one esbuild input (a path relative to the repository).
 * A third-party module stands for its package as a whole: its `package.json`
 * (holding its version) is the input, since its files are pinned by version.
 */
export const inputOf = (path) => {
  const parts = path.split(/[\\/]/)
  const lastModules = parts.lastIndexOf("node_modules")
  if (lastModules >= 0) {
    const scoped = parts[lastModules + 1]?.startsWith("@")
    const name = parts.slice(lastModules + 1, lastModules + (scoped ? 3 : 2)).join("/")
    return { package: name, file: "package.json" }
  }
  if (parts[0] === "packages" && parts[1] in workspacePackages) return { package: workspacePackages[parts[1]], file: parts.slice(2).join("/") }
  throw new Error(`bundle input outside the workspace and node_modules: ${path}`)
}

/** Every input of the given esbuild metafiles, once each, in a stable order. */
export const inputsOf = (metafiles) => {
  const seen = new Map()
  for (const metafile of metafiles)
    for (const path of Object.keys(metafile.inputs)) {
      // A dynamic import of a Node built-in, or the stand-in for @plinth/cluster (bundle-cli.mjs): generated, no file behind it.
      if (path.startsWith("dynamic-builtin:") || path.startsWith("cluster-elsewhere:")) continue
      const input = inputOf(path)
      seen.set(`${input.package}/${input.file}`, input)
    }
  return [...seen.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, input]) => input)
}

/**
 * Writes `dir/build.json` (temporary name, then rename); `resolveFrom` is the
 * package.json the host resolves from; `extra` fields go into the record as they are.
 */
export const writeBuildRecord = async (dir, metafiles, resolveFrom, extra = {}) => {
  const { buildIdOf, packageRootFrom, BUILD_FILE } = await import(pathToFileURL(join(repoDir, "packages", "runtime", "dist", "instance", "BuildId.js")).href)
  const inputs = inputsOf(metafiles)
  const id = buildIdOf(inputs, resolveFrom)
  // Per-file hashes as well, for the CLI's launcher, which checks without loading the runtime.
  const withHashes = inputs.map((input) => {
    const root = packageRoot(resolveFrom, packageRootFrom, input.package)
    return { ...input, sha256: createHash("sha256").update(readFileSync(join(root, input.file))).digest("hex") }
  })
  const file = join(dir, BUILD_FILE)
  writeFileSync(`${file}.tmp`, JSON.stringify({ id, ...extra, inputs: withHashes }, null, 1) + "\n")
  renameSync(`${file}.tmp`, file)
  return id
}

// The same lookup as the host's (BuildId.ts), with the same fallback below Plinth's own packages.
const packageRoot = (resolveFrom, packageRootFrom, name) => {
  for (const from of [resolveFrom, ...Object.keys(workspacePackages).map((dir) => join(repoDir, "packages", dir, "package.json"))]) {
    try {
      return packageRootFrom(from, name)
    } catch {}
  }
  throw new Error(`cannot find the package ${name}`)
}
