import { realpathSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join, sep } from "node:path"
import { DEFAULT_MEMORY_MIB, type Permissions, type Resources } from "@plinth/domain"
import { bundleIsCurrent, runtimePackageRoot } from "./BuildId.js"

/*
 * Node's permission model as the sandbox inside every worker, in both
 * isolation tiers (Isolation.ts puts an OS boundary around it when it can).
 * It is a seat belt, not a jail: it stops plugin code from reading anything
 * but the worker runtime (and its data folder, when granted), writing without
 * a grant, spawning processes or threads; it does not cover the network or
 * reads through a link someone else placed in a granted folder, and Node
 * documents it as experimental. The plugin folder itself is not granted: the
 * worker gets the verified bytes over its channel (VerifiedFiles.ts) and
 * plugin code reads its assets through `context.files`, so nothing on disk
 * that was not verified can be loaded or read as the plugin's own.
 */

/*
 * Paths are found through the installed `@plinth/runtime` package, not next
 * to this module: the CLI bundles this code into a file of its own package.
 */
let entries: { readonly compiled: string; readonly bundled: string } | undefined
const entryPaths = () => {
  if (entries !== undefined) return entries
  const root = runtimePackageRoot()
  /** The compiled worker entry (the process side). */
  const compiled = join(root, "dist", "process", "bootstrap.js")
  /** The same runtime bundled into one file by `npm run build` (ADR 0012). */
  const bundled = join(root, "dist", "worker-bundle", "bootstrap.cjs")
  return (entries = { compiled, bundled })
}

const sharedLibraryEntries = () => {
  const require = createRequire(import.meta.url)
  return { effect: realpathSync(require.resolve("effect")), domain: realpathSync(require.resolve("@plinth/domain")) }
}

let bundled: boolean | undefined

/**
 * Whether workers start from the bundle: only when its build id matches the
 * compiled runtime, domain and `effect` installed next to it (BuildId.ts), so
 * a `tsc -b` without the bundle step falls back to the compiled files, never
 * to stale code, and an installed package (whose file times npm does not
 * keep) uses its bundle. Decided once per process, on the first worker.
 */
export const workerBundled = (): boolean => {
  if (bundled === undefined) {
    const { bundled: entry } = entryPaths()
    bundled = bundleIsCurrent(dirname(entry), join(runtimePackageRoot(), "package.json"))
  }
  return bundled
}

/** The module a worker process starts from. */
export const workerEntryPath = (): string => (workerBundled() ? entryPaths().bundled : entryPaths().compiled)

/**
 * Folders the worker runtime itself must read. Bundled: its one folder (the
 * shared libraries are inside it). Otherwise: its own code and the installed
 * packages it loads.
 */
export const runtimeReadPaths = (): ReadonlyArray<string> => {
  if (workerBundled()) return [dirname(entryPaths().bundled)]
  const { effect, domain } = sharedLibraryEntries()
  const nodeModules = effect.slice(0, effect.lastIndexOf(`${sep}node_modules${sep}`) + `${sep}node_modules`.length)
  // The whole compiled runtime: the process side imports the wire folder next to it.
  return [dirname(dirname(entryPaths().compiled)), nodeModules, dirname(domain)]
}

/** A folder and everything below it, in the permission model's syntax. */
// Node 20 wants the wildcard form; listing the bare folder as well breaks the grant.
const folderGrant = (folder: string) => [`${folder}${sep}*`]

export interface SandboxPlan {
  readonly execArgv: ReadonlyArray<string>
  readonly env: Readonly<Record<string, string>>
}

export const sandboxFor = (options: {
  readonly permissions: Permissions | undefined
  readonly resources?: Resources | undefined
  readonly dataDir: string | undefined
  readonly hostEnv: Readonly<Record<string, string | undefined>>
}): SandboxPlan => {
  const permissions = options.permissions ?? {}
  const reads = [...runtimeReadPaths(), ...(options.dataDir !== undefined ? [options.dataDir] : [])]
  const execArgv = [
    // A heap bomb dies at its cap (WorkerOutOfMemory) instead of growing the machine's memory.
    `--max-old-space-size=${options.resources?.memoryMiB ?? DEFAULT_MEMORY_MIB}`,
    "--experimental-permission",
    // One flag per path: Node 20.20 no longer accepts a comma-separated list.
    ...reads.flatMap(folderGrant).map((grant) => `--allow-fs-read=${grant}`),
    ...(options.dataDir !== undefined ? folderGrant(options.dataDir).map((grant) => `--allow-fs-write=${grant}`) : []),
    ...(permissions.childProcess === true ? ["--allow-child-process"] : []),
    ...(permissions.workerThreads === true ? ["--allow-worker"] : []),
    "--experimental-vm-modules",
    "--disable-warning=ExperimentalWarning",
  ]
  const env: Record<string, string> = {}
  for (const name of permissions.env ?? []) {
    const value = options.hostEnv[name]
    if (value !== undefined) env[name] = value
  }
  return { execArgv, env }
}
