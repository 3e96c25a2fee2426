import { readdirSync, realpathSync, statSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join, sep } from "node:path"
import { fileURLToPath } from "node:url"
import { DEFAULT_MEMORY_MIB, type Permissions, type Resources } from "@plinth/domain"

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

/** The compiled worker entry (the process side), resolved to the built file from `src/instance` and `dist/instance` alike. */
const compiledEntryPath = fileURLToPath(new URL("../../dist/process/bootstrap.js", import.meta.url))
/** The same runtime bundled into one file by `npm run build` (ADR 0012). */
const bundledEntryPath = fileURLToPath(new URL("../../dist/worker-bundle/bootstrap.cjs", import.meta.url))

const newestModule = (folder: string): number => {
  try {
    return Math.max(0, ...readdirSync(folder).filter((name) => name.endsWith(".js")).map((name) => statSync(join(folder, name)).mtimeMs))
  } catch {
    return Number.POSITIVE_INFINITY
  }
}

const sharedLibraryEntries = () => {
  const require = createRequire(import.meta.url)
  return { effect: realpathSync(require.resolve("effect")), domain: realpathSync(require.resolve("@plinth/domain")) }
}

/**
 * Whether workers start from the bundle: only when it exists and is newer
 * than the compiled runtime and domain it was made from, so a `tsc -b`
 * without the bundle step falls back to the compiled files, never to stale code.
 */
const bundleIsFresh = (): boolean => {
  try {
    const bundled = statSync(bundledEntryPath).mtimeMs
    return bundled >= newestModule(dirname(compiledEntryPath)) && bundled >= newestModule(dirname(sharedLibraryEntries().domain))
  } catch {
    return false
  }
}

export const workerBundled: boolean = bundleIsFresh()

/** The module a worker process starts from. */
export const workerEntryPath = workerBundled ? bundledEntryPath : compiledEntryPath

/**
 * Folders the worker runtime itself must read. Bundled: its one folder (the
 * shared libraries are inside it). Otherwise: its own code and the installed
 * packages it loads.
 */
export const runtimeReadPaths = (): ReadonlyArray<string> => {
  if (workerBundled) return [dirname(bundledEntryPath)]
  const { effect, domain } = sharedLibraryEntries()
  const nodeModules = effect.slice(0, effect.lastIndexOf(`${sep}node_modules${sep}`) + `${sep}node_modules`.length)
  // The whole compiled runtime: the process side imports the wire folder next to it.
  return [dirname(dirname(compiledEntryPath)), nodeModules, dirname(domain)]
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
