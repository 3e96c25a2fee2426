import { isBuiltin } from "node:module"
import vm from "node:vm"

/*
 * Links a plugin's module graph from the verified bytes the host sent, never
 * from disk: relative imports resolve inside that in-memory map only; the
 * shared libraries resolve to the worker's own copies; Node builtins resolve
 * normally (the permission model still applies to what they do); anything
 * else is refused.
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

const moduleFile = /\.(m?js)$/

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

  const resolveRelative = (specifier: string, referrer: string): string => {
    const url = new URL(specifier, urlBase + referrer)
    if (url.origin !== new URL(urlBase).origin) throw new ImportRefused(specifier, referrer, "it leaves the plugin")
    const path = decodeURIComponent(url.pathname.slice(1))
    if (!options.files.has(path)) throw new ImportRefused(specifier, referrer, `'${path}' is not a verified file of the plugin`)
    if (!moduleFile.test(path)) throw new ImportRefused(specifier, referrer, `'${path}' is not an ES module (.js or .mjs)`)
    return path
  }

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

  const sourceModule = (path: string): vm.SourceTextModule => {
    const module: vm.SourceTextModule = new vm.SourceTextModule(decoder.decode(options.files.get(path)!), {
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
      key = `shared:${specifier}`
      make = async () => synthetic(specifier, await options.importShared(specifier))
    } else {
      throw new ImportRefused(specifier, referrer, "only relative imports, effect, @plinth/domain and node builtins are allowed")
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
