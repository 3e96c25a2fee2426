import { posix } from "node:path"
import { exports as packageExports, imports as packageImports } from "resolve.exports"

/*
 * How a plugin's imports find its own dependencies, over its verified files
 * only (ADR 21): a plugin ships its packages in `node_modules/` inside its
 * folder, pinned by the lock like every other file. A bare specifier is
 * looked up in the `node_modules` folders from the importing file's folder
 * up to the plugin folder, never beyond; package.json `exports` (with the
 * import conditions), then `module`, then `main` decide the file. Relative
 * imports from inside a package stay inside that package. No disk, no
 * Node resolver: the same rules in the worker (ModuleGraph.ts) and for
 * in-process loading (loading/VerifiedModuleHooks.ts).
 *
 * Paths are relative to the plugin folder, `/`-separated; folders too ("" is
 * the plugin folder itself).
 */

/** A plugin's verified files, as resolution sees them. */
export interface VerifiedTree {
  readonly plugin: string
  readonly files: ReadonlyMap<string, Uint8Array>
  /** Every folder holding a verified file ("" included). */
  readonly dirs: ReadonlySet<string>
}

/** An import these rules refuse; `code` is the Node error code that fits. */
export class ResolutionRefused extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
    this.name = "ResolutionRefused"
  }
}

export const dirOf = (path: string) => (posix.dirname(path) === "." ? "" : posix.dirname(path))
export const within = (dir: string, name: string) => (dir === "" ? name : `${dir}/${name}`)

/** The folders of a set of file paths, the plugin folder ("") included. */
export const foldersOf = (paths: Iterable<string>): Set<string> => {
  const dirs = new Set<string>([""])
  for (const path of paths) for (let d = dirOf(path); !dirs.has(d); d = dirOf(d)) dirs.add(d)
  return dirs
}

const utf8 = new TextDecoder("utf-8", { fatal: true })

/**
 * A package.json of the plugin, as Node's resolver reads one (last key wins):
 * this resolves, it does not review; the bytes were pinned by the lock.
 */
export const readPackageJson = (tree: VerifiedTree, path: string): Record<string, unknown> => {
  try {
    const value: unknown = JSON.parse(utf8.decode(tree.files.get(path)!))
    if (typeof value === "object" && value !== null && !Array.isArray(value)) return value as Record<string, unknown>
  } catch {
    // reported below
  }
  throw new ResolutionRefused("ERR_INVALID_PACKAGE_CONFIG", `'${path}' of plugin '${tree.plugin}' is not a JSON object`)
}

/** The nearest package.json at or above a folder, inside the plugin. */
export const packageScope = (tree: VerifiedTree, dir: string): string | undefined => {
  for (let d = dir; ; d = dirOf(d)) {
    if (tree.files.has(within(d, "package.json"))) return within(d, "package.json")
    if (d === "") return undefined
  }
}

/**
 * The folder of the installed package a path is in (`node_modules/a`,
 * `node_modules/@s/b`, `node_modules/a/node_modules/c`), or undefined for the
 * plugin's own files.
 */
export const packageFolderOf = (path: string): string | undefined => {
  const parts = path.split("/")
  let end = -1
  for (let i = 0; i < parts.length - 1; i++) {
    if (parts[i] !== "node_modules") continue
    const name = parts[i + 1]!
    end = name.startsWith("@") ? i + 2 : i + 1
    i = end
  }
  return end < 0 || end >= parts.length ? undefined : parts.slice(0, end + 1).join("/")
}

/**
 * Refuses a relative import that leaves the package its importer belongs
 * to: a dependency reaches its own files, not the plugin's code or another
 * package's internals by path. (Leaving the plugin folder is impossible by
 * construction: only its verified files are ever served.)
 */
export const checkStaysInPackage = (tree: VerifiedTree, referrer: string, target: string, specifier: string): void => {
  const pkg = packageFolderOf(referrer)
  if (pkg !== undefined && !target.startsWith(`${pkg}/`)) {
    throw new ResolutionRefused(
      "ERR_MODULE_NOT_FOUND",
      `'${specifier}' from '${referrer}' leaves the package '${pkg}' of plugin '${tree.plugin}': a dependency imports only its own files and packages`,
    )
  }
}

/** The file an `exports` or `imports` target names, kept inside its package. */
const packageTarget = (tree: VerifiedTree, pkgDir: string, targets: ReadonlyArray<string> | void, specifier: string): string => {
  const target = targets?.[0]
  if (target === undefined) {
    throw new ResolutionRefused("ERR_PACKAGE_PATH_NOT_EXPORTED", `'${specifier}' is not exported by '${pkgDir || "."}' in plugin '${tree.plugin}'`)
  }
  const path = posix.normalize(within(pkgDir, target))
  const inside = pkgDir === "" ? !path.startsWith("../") && !path.startsWith("/") : path.startsWith(`${pkgDir}/`)
  if (!inside) throw new ResolutionRefused("ERR_INVALID_PACKAGE_TARGET", `'${target}' leaves '${pkgDir || "."}' in plugin '${tree.plugin}'`)
  return path
}

/** A package's entry without `exports`: its ES module build (`module`), else `main`, else index.js, as bundlers and Node look. */
const legacyEntry = (tree: VerifiedTree, pkgDir: string, pkg: Record<string, unknown> | undefined): string | undefined => {
  const candidates: Array<string> = []
  for (const field of ["module", "main"] as const) {
    const value = pkg?.[field]
    if (typeof value !== "string") continue
    const base = posix.normalize(within(pkgDir, value))
    if (!base.startsWith(`${pkgDir}/`)) continue
    candidates.push(base, `${base}.js`, `${base}.mjs`, `${base}.json`, `${base}/index.js`, `${base}/index.mjs`)
  }
  return [...candidates, `${pkgDir}/index.js`, `${pkgDir}/index.mjs`, `${pkgDir}/index.json`].find((p) => tree.files.has(p))
}

/**
 * A bare specifier (`pkg`, `pkg/sub`, `@scope/pkg/sub`) from a file in
 * `fromDir`: a package in the plugin's own `node_modules`, looked for from
 * that folder up to the plugin folder and no further. Undefined when the
 * plugin ships no package of that name.
 */
export const resolvePackage = (
  tree: VerifiedTree,
  fromDir: string,
  specifier: string,
  conditions: ReadonlyArray<string>,
): string | undefined => {
  const parts = specifier.split("/")
  const nameParts = specifier.startsWith("@") ? 2 : 1
  if (parts.length < nameParts || parts.some((p) => p === "" || p === "." || p === "..") || specifier.includes("\\")) {
    throw new ResolutionRefused("ERR_INVALID_MODULE_SPECIFIER", `'${specifier}' is not a valid package name`)
  }
  const name = parts.slice(0, nameParts).join("/")
  const subpath = parts.length > nameParts ? `./${parts.slice(nameParts).join("/")}` : "."
  for (let d = fromDir; ; d = dirOf(d)) {
    const pkgDir = within(d, `node_modules/${name}`)
    if (tree.dirs.has(pkgDir)) {
      const pkg = tree.files.has(`${pkgDir}/package.json`) ? readPackageJson(tree, `${pkgDir}/package.json`) : undefined
      if (pkg !== undefined && pkg["exports"] !== undefined) {
        let targets: ReadonlyArray<string> | void
        try {
          targets = packageExports(pkg, subpath, { conditions: [...conditions], unsafe: true })
        } catch {
          targets = undefined
        }
        return packageTarget(tree, pkgDir, targets, specifier)
      }
      if (subpath !== ".") return packageTarget(tree, pkgDir, [subpath], specifier)
      const entry = legacyEntry(tree, pkgDir, pkg)
      if (entry === undefined) throw new ResolutionRefused("ERR_MODULE_NOT_FOUND", `package '${name}' in plugin '${tree.plugin}' has no entry`)
      return entry
    }
    if (d === "") return undefined
  }
}

/** A `#import` of the nearest package.json: the target path, or a bare specifier to resolve as such. */
export const resolvePackageImport = (
  tree: VerifiedTree,
  fromDir: string,
  specifier: string,
  conditions: ReadonlyArray<string>,
): { readonly path: string } | { readonly bare: string } => {
  const scope = packageScope(tree, fromDir)
  let targets: ReadonlyArray<string> | void
  try {
    targets = scope === undefined ? undefined : packageImports(readPackageJson(tree, scope), specifier, { conditions: [...conditions], unsafe: true })
  } catch {
    targets = undefined
  }
  const target = targets?.[0]
  if (target === undefined) throw new ResolutionRefused("ERR_PACKAGE_IMPORT_NOT_DEFINED", `'${specifier}' is not defined by the imports of plugin '${tree.plugin}'`)
  if (target.startsWith("#")) throw new ResolutionRefused("ERR_INVALID_PACKAGE_TARGET", `'${specifier}' maps to another import, '${target}'`)
  if (!target.startsWith("./")) return { bare: target }
  return { path: packageTarget(tree, dirOf(scope!), [target], specifier) }
}

/**
 * How a verified file runs: an ES module or JSON, or why not. The plugin's
 * own `.js` files are ES modules (plugins are ESM); inside `node_modules` a
 * `.js` file follows its package as Node would (`"type": "module"`), and a
 * package that also names an ES module build (`module`) is taken as ESM.
 * CommonJS is refused: its `require` is a second, synchronous loader that
 * would have to reach the disk (ADR 21 says why, and how to bundle instead).
 */
export const moduleFormat = (tree: VerifiedTree, path: string): "module" | "json" | { readonly refused: string } => {
  if (path.endsWith(".mjs")) return "module"
  if (path.endsWith(".json")) return "json"
  const hint = "plugins load ES modules only; bundle a CommonJS dependency into the plugin with esbuild (README, 'Dependencies')"
  if (path.endsWith(".cjs")) return { refused: `'${path}' of plugin '${tree.plugin}' is CommonJS; ${hint}` }
  if (!path.endsWith(".js")) return { refused: `'${path}' of plugin '${tree.plugin}' is not a module (.js, .mjs or .json)` }
  const scope = packageScope(tree, dirOf(path))
  const pkg = scope === undefined ? undefined : readPackageJson(tree, scope)
  const type = pkg?.["type"]
  if (type === "commonjs") return { refused: `'${path}' of plugin '${tree.plugin}' is CommonJS ('${scope}' says "type": "commonjs"); ${hint}` }
  if (packageFolderOf(path) !== undefined && type !== "module" && typeof pkg?.["module"] !== "string") {
    return { refused: `'${path}' of plugin '${tree.plugin}' is CommonJS (its package.json does not say "type": "module"); ${hint}` }
  }
  return "module"
}
