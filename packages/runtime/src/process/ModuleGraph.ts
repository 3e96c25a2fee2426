import { isBuiltin } from "node:module"
import vm from "node:vm"
import {
  checkStaysInPackage,
  dirOf,
  foldersOf,
  moduleFormat,
  resolvePackage,
  resolvePackageImport,
  ResolutionRefused,
  type VerifiedTree,
} from "./PackageResolution.js"

/*
 * Links a plugin's module graph from the verified bytes the host sent, never
 * from disk: relative imports resolve inside that in-memory map only; the
 * shared libraries resolve to the worker's own copies; Node builtins resolve
 * normally (the permission model still applies to what they do); other bare
 * specifiers resolve to packages the plugin ships in its own node_modules,
 * from the same verified bytes (PackageResolution.ts); anything else is refused.
 */

/** A specifier the sandbox does not resolve. */
export class ImportRefused extends Error {
  readonly code = "PLINTH_IMPORT_REFUSED"
  constructor(readonly specifier: string, readonly referrer: string, reason: string) {
    super(`import '${specifier}' from '${referrer}' refused: ${reason}`)
    this.name = "ImportRefused"
  }
}

const sharedLibraries = (specifier: string) =>
  specifier === "effect" || specifier.startsWith("effect/") || specifier === "@plinth/domain"

/** The worker's import conditions, as Node's for `import` (resolve.exports adds "default"). */
const CONDITIONS = ["node", "import"] as const

export interface ModuleGraph {
  /** Links and evaluates the entry; resolves with its namespace. */
  readonly evaluateEntry: () => Promise<Record<string, unknown>>
}

export const makeModuleGraph = (options: {
  readonly plugin: string
  readonly entry: string
  readonly files: ReadonlyMap<string, Uint8Array>
  /** Imports a shared library or builtin on behalf of the plugin (from the worker's own module). */
  readonly importShared: (specifier: string) => Promise<Record<string, unknown>>
}): ModuleGraph => {
  const decoder = new TextDecoder("utf-8", { fatal: true })
  const pathOf = new WeakMap<vm.Module, string>()
  // Promises, not modules, so two importers of one specifier linking concurrently share one instance.
  const byKey = new Map<string, Promise<vm.Module>>()
  const urlBase = `plinth-plugin://${options.plugin}/`

  const tree: VerifiedTree = { plugin: options.plugin, files: options.files, dirs: foldersOf(options.files.keys()) }

  /** Runs a resolution step, turning its refusal into this graph's ImportRefused. */
  const resolving = <A>(specifier: string, referrer: string, step: () => A): A => {
    try {
      return step()
    } catch (error) {
      if (error instanceof ResolutionRefused) throw new ImportRefused(specifier, referrer, error.message)
      throw error
    }
  }

  /** A verified file that may be linked: its path, checked to exist, stay in its package and be an ES module or JSON. */
  const checkedModule = (specifier: string, referrer: string, path: string): string => {
    if (!options.files.has(path)) throw new ImportRefused(specifier, referrer, `'${path}' is not a verified file of the plugin`)
    const format = resolving(specifier, referrer, () => moduleFormat(tree, path))
    if (typeof format !== "string") throw new ImportRefused(specifier, referrer, format.refused)
    return path
  }

  const resolveRelative = (specifier: string, referrer: string): string => {
    const url = new URL(specifier, urlBase + referrer)
    if (url.origin !== new URL(urlBase).origin) throw new ImportRefused(specifier, referrer, "it leaves the plugin")
    const path = decodeURIComponent(url.pathname.slice(1))
    if (referrer !== "") resolving(specifier, referrer, () => checkStaysInPackage(tree, referrer, path, specifier))
    return checkedModule(specifier, referrer, path)
  }

  /** A bare specifier or `#import` the plugin resolves itself, or undefined when it ships no such package. */
  const resolveOwn = (specifier: string, referrer: string): string | undefined =>
    resolving(specifier, referrer, () => {
      if (specifier.startsWith("#")) {
        const target = resolvePackageImport(tree, dirOf(referrer), specifier, CONDITIONS)
        return "path" in target ? target.path : resolvePackage(tree, dirOf(referrer), target.bare, CONDITIONS)
      }
      return resolvePackage(tree, dirOf(referrer), specifier, CONDITIONS)
    })

  const synthetic = (key: string, namespace: Record<string, unknown>) => {
    const names = Object.keys(namespace)
    return new vm.SyntheticModule(
      names,
      function (this: vm.SyntheticModule) {
        for (const name of names) this.setExport(name, namespace[name])
      },
      { identifier: key },
    )
  }

  const sourceModule = (path: string): vm.Module => {
    const text = decoder.decode(options.files.get(path)!)
    if (path.endsWith(".json")) return synthetic(urlBase + path, { default: JSON.parse(text) as unknown })
    const module: vm.SourceTextModule = new vm.SourceTextModule(text, {
      identifier: urlBase + path,
      initializeImportMeta: (meta) => {
        meta.url = urlBase + path
      },
      importModuleDynamically: (async (specifier: string) => {
        const imported = await moduleFor(specifier, path)
        if (imported.status === "unlinked") await imported.link(linker)
        if (imported.status === "linked") await imported.evaluate()
        return imported
      }) as unknown as vm.SourceTextModuleOptions["importModuleDynamically"],
    })
    pathOf.set(module, path)
    return module
  }

  const moduleFor = async (specifier: string, referrer: string): Promise<vm.Module> => {
    let key: string
    let make: () => Promise<vm.Module> | vm.Module
    if (specifier.startsWith("./") || specifier.startsWith("../")) {
      const path = resolveRelative(specifier, referrer)
      key = `file:${path}`
      make = () => sourceModule(path)
    } else if (sharedLibraries(specifier) || isBuiltin(specifier)) {
      // Before the plugin's own packages: the runtime runs the plugin's Effects and Schemas, so there is one `effect`.
      key = `shared:${specifier}`
      make = async () => synthetic(specifier, await options.importShared(specifier))
    } else {
      const own = resolveOwn(specifier, referrer)
      if (own === undefined) {
        throw new ImportRefused(
          specifier,
          referrer,
          "the plugin ships no such package in its node_modules; a plugin imports its own files, the packages in its own node_modules, effect, @plinth/domain and Node builtins",
        )
      }
      const path = checkedModule(specifier, referrer, own)
      key = `file:${path}`
      make = () => sourceModule(path)
    }
    const cached = byKey.get(key)
    if (cached !== undefined) return cached
    const module = Promise.resolve().then(make)
    byKey.set(key, module)
    return module
  }

  const linker = (specifier: string, referencing: vm.Module) => moduleFor(specifier, pathOf.get(referencing) ?? "")

  return {
    evaluateEntry: async () => {
      if (!options.files.has(options.entry)) throw new ImportRefused(options.entry, "plugin.json", "the entry is not a verified file")
      const entry = await moduleFor(`./${options.entry}`, "")
      await entry.link(linker)
      await entry.evaluate()
      return entry.namespace as Record<string, unknown>
    },
  }
}
