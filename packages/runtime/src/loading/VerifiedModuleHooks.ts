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
 * - bare specifiers: the plugin's own `node_modules` inside its folder, from the verified bytes, looked
 *   for up to the plugin folder and no further (process/PackageResolution.ts, the worker's rules too);
 *   if the plugin has no such package, only the shared libraries (`effect`, `@plinth/domain`) resolve,
 *   as the host's, from the folder holding the plugin; any other package is refused (ADR 21);
 * - `#imports` of the plugin's nearest package.json; Node builtins and `data:` URLs as usual.
 * A relative import from inside a package stays inside that package.
 * CommonJS is refused: on Node 20 a `require` inside it would read the disk, unseen by these hooks.
 */
import { isBuiltin } from "node:module"
import type { InitializeHook, LoadHook, ResolveHook } from "node:module"
import { dirname, join, posix, resolve as resolvePath } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import type { MessagePort } from "node:worker_threads"
import {
  checkStaysInPackage,
  dirOf,
  foldersOf,
  moduleFormat,
  resolvePackage,
  resolvePackageImport,
  ResolutionRefused,
  type VerifiedTree,
} from "../process/PackageResolution.js"
import { VERIFIED_PARAM, type AddLoad, type AddLoadReply } from "./VerifiedModuleProtocol.js"

interface Load extends VerifiedTree {
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
  for (const file of message.files) files.set(file.path, file.bytes)
  const dirs = foldersOf(files.keys())
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

/** Runs a step of the shared resolution rules, turning a refusal into this loader's error. */
const resolving = <A>(step: () => A): A => {
  try {
    return step()
  } catch (error) {
    if (error instanceof ResolutionRefused) throw new Refused(error.code, error.message)
    throw error
  }
}

/** The shared libraries a plugin that does not ship them gets from the host, as the worker serves them. */
const sharedLibrary = (specifier: string) =>
  specifier === "effect" || specifier.startsWith("effect/") || specifier === "@plinth/domain"

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
    const path = pathInside(load, url, specifier)
    resolving(() => checkStaysInPackage(load, parent.path, path, specifier))
    return { url: verifiedUrl(load, nonce, path, url.hash), shortCircuit: true }
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(specifier)) {
    throw new Refused("ERR_UNSUPPORTED_ESM_URL_SCHEME", `'${specifier}' cannot be imported by plugin '${load.plugin}'`)
  }
  // Node's conditions for this import ("node", "import", any --conditions); resolve.exports adds "default".
  const conditions = context.conditions ?? ["node", "import"]
  let bare = specifier
  if (specifier.startsWith("#")) {
    const target = resolving(() => resolvePackageImport(load, fromDir, specifier, conditions))
    if ("path" in target) return { url: verifiedUrl(load, nonce, target.path), shortCircuit: true }
    if (isBuiltin(target.bare)) return next(target.bare, context)
    bare = target.bare
  }
  const own = resolving(() => resolvePackage(load, fromDir, bare, conditions))
  if (own !== undefined) return { url: verifiedUrl(load, nonce, own), shortCircuit: true }
  if (!sharedLibrary(bare)) {
    throw new Refused(
      "ERR_MODULE_NOT_FOUND",
      `'${bare}' is not a package of plugin '${load.plugin}': a plugin imports its own files, the packages in its own node_modules, effect, @plinth/domain and Node builtins`,
    )
  }

  // A shared library the plugin does not ship: the host's, resolved as from the folder holding the plugin.
  const resolved = await next(bare, { ...context, parentURL: load.hostParent })
  if (resolved.url.startsWith(load.root)) {
    throw new Refused("ERR_MODULE_NOT_FOUND", `'${bare}' resolves into plugin '${load.plugin}' outside its node_modules; it was not verified as a package`)
  }
  return resolved
}

/** ES modules and JSON, nothing else (PackageResolution.ts, moduleFormat): CommonJS would `require` from disk, past these hooks. */
const formatOf = (load: Load, path: string): "module" | "json" => {
  const format = resolving(() => moduleFormat(load, path))
  if (typeof format !== "string") throw new Refused("ERR_UNKNOWN_MODULE_FORMAT", `${format.refused}; in-process plugins load ES modules and JSON only`)
  return format
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
