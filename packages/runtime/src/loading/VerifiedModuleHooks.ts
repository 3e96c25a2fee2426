/*
 * Module customization hooks (`module.register`) that serve a plugin's modules
 * from the bytes the host read once and checked against the lock, never from
 * disk. Node 20 runs them on its loader thread; the host sends each load's
 * files over a MessagePort (VerifiedImport.ts) before it imports the entry.
 *
 * A module of a load has the URL of its file on disk plus `?plinth-verified=<nonce>`:
 * `import.meta.url`, `import.meta.filename` and stack traces name the real
 * file, and a fresh nonce per load means a relocked plugin never meets a stale
 * module cache. Imports from such a module resolve as follows (ADR 14):
 * - relative and absolute URLs: a verified file of the plugin, or refused (leaving the plugin, or a file not verified);
 * - bare specifiers: the plugin's own `node_modules` inside its folder, from the verified bytes
 *   (package `exports` via resolve.exports, else `main`); if the plugin has no such package, the
 *   host resolves it as from the folder holding the plugin (the host's packages: `effect`, `@plinth/domain`);
 * - `#imports` of the plugin's nearest package.json; Node builtins and `data:` URLs as usual.
 * CommonJS is refused: on Node 20 a `require` inside it would read the disk, unseen by these hooks.
 */
import { isBuiltin } from "node:module"
import type { InitializeHook, LoadHook, ResolveHook } from "node:module"
import { dirname, join, posix, resolve as resolvePath } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import type { MessagePort } from "node:worker_threads"
import { exports as packageExports, imports as packageImports } from "resolve.exports"
import { VERIFIED_PARAM, type AddLoad, type AddLoadReply } from "./VerifiedModuleProtocol.js"

interface Load {
  readonly plugin: string
  /** `file:` URL of the plugin folder, with a trailing slash. */
  readonly root: string
  /** `file:` URL of the folder holding the plugin: where the host's packages resolve from. */
  readonly hostParent: string
  readonly files: ReadonlyMap<string, Uint8Array>
  /** Every folder holding a verified file, relative ("" is the plugin folder). */
  readonly dirs: ReadonlySet<string>
}

const loads = new Map<string, Load>()
const utf8 = new TextDecoder("utf-8", { fatal: true })

const makeLoad = (message: AddLoad): Load => {
  const dir = resolvePath(message.dir)
  const files = new Map<string, Uint8Array>()
  const dirs = new Set<string>([""])
  for (const file of message.files) {
    files.set(file.path, file.bytes)
    for (let d = dirOf(file.path); !dirs.has(d); d = dirOf(d)) dirs.add(d)
  }
  return {
    plugin: message.plugin,
    root: pathToFileURL(join(dir, "/")).href,
    hostParent: pathToFileURL(join(dirname(dir), "/")).href,
    files,
    dirs,
  }
}

export const initialize: InitializeHook<{ readonly port: MessagePort }> = ({ port }) => {
  port.on("message", (message: AddLoad) => {
    try {
      loads.set(message.nonce, makeLoad(message))
      port.postMessage({ id: message.id } satisfies AddLoadReply)
    } catch (error) {
      port.postMessage({ id: message.id, error: String(error) } satisfies AddLoadReply)
    }
  })
}

class Refused extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

/** The load a URL belongs to, and the file's path inside the plugin; undefined for URLs of no load. */
const locate = (href: string): { readonly load: Load; readonly nonce: string; readonly path: string } | undefined => {
  if (!href.startsWith("file:") || !href.includes(`${VERIFIED_PARAM}=`)) return undefined
  const url = new URL(href)
  const nonce = url.searchParams.get(VERIFIED_PARAM)
  if (nonce === null) return undefined
  const load = loads.get(nonce)
  if (load === undefined) throw new Refused("ERR_MODULE_NOT_FOUND", `'${href}' names no verified plugin load of this process`)
  return { load, nonce, path: pathInside(load, url, href) }
}

const pathInside = (load: Load, url: URL, shown: string): string => {
  const bare = new URL(url.href)
  bare.search = ""
  bare.hash = ""
  if (!bare.href.startsWith(load.root)) {
    throw new Refused("ERR_MODULE_NOT_FOUND", `'${shown}' is outside plugin '${load.plugin}': a plugin imports only its own verified files and packages`)
  }
  return posix.normalize(fileURLToPath(bare).slice(fileURLToPath(load.root).length))
}

/** The URL under which a verified file of a load is imported. */
const verifiedUrl = (load: Load, nonce: string, path: string, hash = ""): string => {
  if (!load.files.has(path)) {
    throw new Refused("ERR_MODULE_NOT_FOUND", `'${path}' is not a verified file of plugin '${load.plugin}'`)
  }
  const url = pathToFileURL(join(fileURLToPath(load.root), path))
  url.searchParams.set(VERIFIED_PARAM, nonce)
  url.hash = hash
  return url.href
}

const readJson = (load: Load, path: string): Record<string, unknown> => {
  try {
    const value: unknown = JSON.parse(utf8.decode(load.files.get(path)!))
    if (typeof value === "object" && value !== null && !Array.isArray(value)) return value as Record<string, unknown>
  } catch {
    // reported below
  }
  throw new Refused("ERR_INVALID_PACKAGE_CONFIG", `'${path}' of plugin '${load.plugin}' is not a JSON object`)
}

/** Folders are relative to the plugin folder, which is "". */
const dirOf = (path: string) => (posix.dirname(path) === "." ? "" : posix.dirname(path))
const within = (dir: string, name: string) => (dir === "" ? name : `${dir}/${name}`)

/** The nearest package.json at or above a folder, inside the plugin. */
const packageScope = (load: Load, dir: string): string | undefined => {
  for (let d = dir; ; d = dirOf(d)) {
    if (load.files.has(within(d, "package.json"))) return within(d, "package.json")
    if (d === "") return undefined
  }
}

/** The file an `exports` or `imports` target names, kept inside its package. */
const packageTarget = (load: Load, pkgDir: string, targets: ReadonlyArray<string> | void, specifier: string): string => {
  const target = targets?.[0]
  if (target === undefined) throw new Refused("ERR_PACKAGE_PATH_NOT_EXPORTED", `'${specifier}' is not exported by '${pkgDir || "."}' in plugin '${load.plugin}'`)
  const path = posix.normalize(within(pkgDir, target))
  const inside = pkgDir === "" ? !path.startsWith("../") && !path.startsWith("/") : path.startsWith(`${pkgDir}/`)
  if (!inside) throw new Refused("ERR_INVALID_PACKAGE_TARGET", `'${target}' leaves '${pkgDir || "."}' in plugin '${load.plugin}'`)
  return path
}

/** Node's legacy `main` lookup for ES modules, over the verified files. */
const legacyMain = (load: Load, pkgDir: string, pkg: Record<string, unknown> | undefined): string | undefined => {
  const main = typeof pkg?.["main"] === "string" ? posix.join(pkgDir, pkg["main"] as string) : undefined
  const candidates = main === undefined ? [] : [main, `${main}.js`, `${main}.json`, `${main}/index.js`, `${main}/index.json`]
  return [...candidates, `${pkgDir}/index.js`, `${pkgDir}/index.json`].find((p) => load.files.has(p))
}

/** A bare specifier from a package inside the plugin's own node_modules; undefined if the plugin has none by that name. */
const resolveBare = (load: Load, fromDir: string, specifier: string, conditions: ReadonlyArray<string>): string | undefined => {
  const parts = specifier.split("/")
  const nameParts = specifier.startsWith("@") ? 2 : 1
  if (parts.length < nameParts || parts.slice(0, nameParts).some((p) => p === "" || p === "." || p === "..")) {
    throw new Refused("ERR_INVALID_MODULE_SPECIFIER", `'${specifier}' is not a valid package name`)
  }
  const name = parts.slice(0, nameParts).join("/")
  const subpath = parts.length > nameParts ? `./${parts.slice(nameParts).join("/")}` : "."
  for (let d = fromDir; ; d = dirOf(d)) {
    const pkgDir = within(d, `node_modules/${name}`)
    if (load.dirs.has(pkgDir)) {
      const pkg = load.files.has(`${pkgDir}/package.json`) ? readJson(load, `${pkgDir}/package.json`) : undefined
      if (pkg !== undefined && pkg["exports"] !== undefined) {
        let targets: ReadonlyArray<string> | void
        try {
          targets = packageExports(pkg, subpath, { conditions, unsafe: true })
        } catch {
          targets = undefined
        }
        return packageTarget(load, pkgDir, targets, specifier)
      }
      if (subpath !== ".") return packageTarget(load, pkgDir, [subpath], specifier)
      const main = legacyMain(load, pkgDir, pkg)
      if (main === undefined) throw new Refused("ERR_MODULE_NOT_FOUND", `package '${name}' in plugin '${load.plugin}' has no entry`)
      return main
    }
    if (d === "") return undefined
  }
}

const isRelativeOrAbsolute = (specifier: string) =>
  specifier.startsWith("./") || specifier.startsWith("../") || specifier.startsWith("/") || specifier === "." || specifier === ".."

export const resolve: ResolveHook = async (specifier, context, next) => {
  // The host's import of an entry: served as is, without a look at the disk.
  const direct = locate(specifier)
  if (direct !== undefined) return { url: verifiedUrl(direct.load, direct.nonce, direct.path, new URL(specifier).hash), shortCircuit: true }

  const parent = context.parentURL === undefined ? undefined : locate(context.parentURL)
  if (parent === undefined || isBuiltin(specifier) || specifier.startsWith("data:")) return next(specifier, context)
  const { load, nonce } = parent
  const fromDir = dirOf(parent.path)

  if (isRelativeOrAbsolute(specifier) || specifier.startsWith("file:")) {
    const url = new URL(specifier, context.parentURL)
    return { url: verifiedUrl(load, nonce, pathInside(load, url, specifier), url.hash), shortCircuit: true }
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(specifier)) {
    throw new Refused("ERR_UNSUPPORTED_ESM_URL_SCHEME", `'${specifier}' cannot be imported by plugin '${load.plugin}'`)
  }
  // Node's conditions for this import ("node", "import", any --conditions); resolve.exports adds "default".
  const conditions = context.conditions ?? ["node", "import"]
  if (specifier.startsWith("#")) {
    const scope = packageScope(load, fromDir)
    let targets: ReadonlyArray<string> | void
    try {
      targets = scope === undefined ? undefined : packageImports(readJson(load, scope), specifier, { conditions, unsafe: true })
    } catch {
      targets = undefined
    }
    const target = targets?.[0]
    if (target === undefined) throw new Refused("ERR_PACKAGE_IMPORT_NOT_DEFINED", `'${specifier}' is not defined by the imports of plugin '${load.plugin}'`)
    if (target.startsWith("#")) throw new Refused("ERR_INVALID_PACKAGE_TARGET", `'${specifier}' maps to another import, '${target}'`)
    if (!target.startsWith("./")) return resolve(target, context, next)
    return { url: verifiedUrl(load, nonce, packageTarget(load, dirOf(scope!), [target], specifier)), shortCircuit: true }
  }
  const own = resolveBare(load, fromDir, specifier, conditions)
  if (own !== undefined) return { url: verifiedUrl(load, nonce, own), shortCircuit: true }

  // Not one of the plugin's packages: the host's, resolved as from the folder holding the plugin.
  const resolved = await next(specifier, { ...context, parentURL: load.hostParent })
  if (resolved.url.startsWith(load.root)) {
    throw new Refused("ERR_MODULE_NOT_FOUND", `'${specifier}' resolves into plugin '${load.plugin}' outside its node_modules; it was not verified as a package`)
  }
  return resolved
}

/**
 * ES modules and JSON, nothing else: CommonJS would `require` from disk, past
 * these hooks. A `.js` file with no `type` in a package.json of the plugin is
 * an ES module, as in workers.
 */
const formatOf = (load: Load, path: string): "module" | "json" => {
  if (path.endsWith(".mjs")) return "module"
  if (path.endsWith(".json")) return "json"
  const refuse = (why: string) => new Refused("ERR_UNKNOWN_MODULE_FORMAT", `'${path}' of plugin '${load.plugin}' ${why}; in-process plugins load ES modules and JSON only`)
  if (path.endsWith(".cjs")) throw refuse("is CommonJS")
  if (!path.endsWith(".js")) throw refuse("is not a module (.js, .mjs or .json)")
  const scope = packageScope(load, dirOf(path))
  const type = scope === undefined ? undefined : readJson(load, scope)["type"]
  if (type === "commonjs") throw refuse(`is CommonJS ('${scope}' says "type": "commonjs")`)
  return "module"
}

export const load: LoadHook = async (url, context, next) => {
  const located = locate(url)
  if (located === undefined) return next(url, context)
  const { load, path } = located
  const source = load.files.get(path)
  if (source === undefined) throw new Refused("ERR_MODULE_NOT_FOUND", `'${path}' is not a verified file of plugin '${load.plugin}'`)
  const format = formatOf(load, path)
  // A string, not the bytes: Node transfers a returned buffer to the main thread, which would detach ours.
  let text: string
  try {
    text = utf8.decode(source)
  } catch {
    throw new Refused("ERR_INVALID_ARG_VALUE", `'${path}' of plugin '${load.plugin}' is not UTF-8 text`)
  }
  return { format, source: text, shortCircuit: true }
}
