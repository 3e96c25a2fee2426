import { readdirSync, realpathSync, statSync, type Dirent } from "node:fs"
import { join, sep } from "node:path"
import { Context, Data, Effect, Layer } from "effect"
import { compareBytewise, relativePathProblem, SchemaViolation, sortByPathInPlace, SymlinkEscape } from "@plinth/domain"

/** A regular file of a plugin tree, named by its `/`-separated path relative to the plugin folder. */
export interface PluginFile {
  readonly path: string
  readonly absolutePath: string
}

/*
 * The walk caps the number of files only: knowing sizes would cost one lstat per
 * file, a fifth of a verification. Hashing streams, so size costs time, not
 * memory; the byte cap sits where bytes are held in memory (a worker's verified files).
 */
export interface WalkCaps {
  readonly maxFiles: number
}

export const defaultWalkCaps: WalkCaps = { maxFiles: 100_000 }

export class PluginRootUnreadable extends Data.TaggedError("PluginRootUnreadable")<{
  readonly root: string
  readonly detail: string
}> {}

/**
 * Walks plugin folders. Reads the file system synchronously on purpose: a walk
 * is a burst of tiny metadata calls, and a synchronous loop is an order of
 * magnitude faster than one async call per entry (ADR 0005).
 */
export class PluginFiles extends Context.Tag("@plinth/runtime/PluginFiles")<
  PluginFiles,
  {
    /** The candidate plugin folders directly under root, sorted bytewise; hidden folders are ignored. */
    readonly listPluginFolders: (root: string) => Effect.Effect<ReadonlyArray<string>, PluginRootUnreadable>
    /** Every regular file under a plugin folder, sorted bytewise by relative path. */
    readonly walk: (
      pluginDir: string,
      plugin: string,
      caps?: WalkCaps,
    ) => Effect.Effect<ReadonlyArray<PluginFile>, SymlinkEscape | SchemaViolation>
  }
>() {}

const describe = (error: unknown) => {
  const e = error as NodeJS.ErrnoException
  return e.code !== undefined ? `${e.code}: ${e.message}` : String(error)
}

const isInside = (realRoot: string, realPath: string) => realPath === realRoot || realPath.startsWith(realRoot + sep)

/** The walk itself, pure Node calls; failures come back as typed values, never thrown. */
export const walkPluginFolder = (
  pluginDir: string,
  plugin: string,
  caps: WalkCaps = defaultWalkCaps,
): ReadonlyArray<PluginFile> | SymlinkEscape | SchemaViolation => {
  const violation = (detail: string) => new SchemaViolation({ plugin, detail })
  let realRoot: string
  try {
    realRoot = realpathSync(pluginDir)
  } catch (error) {
    return violation(`the plugin folder cannot be read (${describe(error)})`)
  }
  const files: Array<PluginFile> = []
  // Real paths of the directories on the current descent, to refuse symlink cycles.
  const descent = new Set<string>([realRoot])

  const visit = (absDir: string, relDir: string): SymlinkEscape | SchemaViolation | undefined => {
    let entries: Array<Dirent>
    try {
      entries = readdirSync(absDir, { withFileTypes: true })
    } catch (error) {
      return violation(`the folder '${relDir || "."}' cannot be read (${describe(error)})`)
    }
    for (const entry of entries) {
      const name = entry.name
      const rel = relDir === "" ? name : `${relDir}/${name}`
      const problem = relativePathProblem(rel)
      if (problem !== undefined) return violation(`${JSON.stringify(rel)} cannot be pinned: ${problem}`)
      // Below the top level absDir is already normalized, so a plain concatenation equals join() and costs less.
      const abs = relDir === "" ? join(absDir, name) : absDir + sep + name
      let kind: "file" | "dir" | "other" = entry.isFile() ? "file" : entry.isDirectory() ? "dir" : "other"
      let realDir = abs
      if (entry.isSymbolicLink()) {
        let target: string
        try {
          target = realpathSync(abs)
        } catch {
          return new SymlinkEscape({ plugin, offendingPath: rel })
        }
        if (!isInside(realRoot, target)) return new SymlinkEscape({ plugin, offendingPath: rel })
        const stats = statSync(target)
        kind = stats.isFile() ? "file" : stats.isDirectory() ? "dir" : "other"
        realDir = target
      }
      if (kind === "other") return violation(`'${rel}' is neither a regular file nor a folder`)
      if (kind === "dir") {
        const real = entry.isSymbolicLink() ? realDir : abs
        if (descent.has(real)) return violation(`'${rel}' is a symlink cycle`)
        descent.add(real)
        const failed = visit(abs, rel)
        descent.delete(real)
        if (failed !== undefined) return failed
        continue
      }
      files.push({ path: rel, absolutePath: abs })
      if (files.length > caps.maxFiles) return violation(`the plugin has more than ${caps.maxFiles} files`)
    }
    return undefined
  }

  try {
    const failed = visit(pluginDir, "")
    if (failed !== undefined) return failed
  } catch (error) {
    return violation(`the plugin folder cannot be walked (${describe(error)})`)
  }
  // The digest spec's own order, so a walk is already in the order the digest sorts to.
  return sortByPathInPlace(files)
}

/** The service itself, for a caller that builds its context without layers (`VerifyLive`). */
export const pluginFilesService = PluginFiles.of({
  listPluginFolders: (root) =>
    Effect.try({
      try: () =>
        readdirSync(root, { withFileTypes: true })
          .filter((entry) => !entry.name.startsWith(".") && (entry.isDirectory() || isDirectoryLink(join(root, entry.name), entry)))
          .map((entry) => entry.name)
          .sort(compareBytewise),
      catch: (error) => new PluginRootUnreadable({ root, detail: describe(error) }),
    }),
  walk: (pluginDir, plugin, caps) =>
    Effect.suspend(() => {
      const result = walkPluginFolder(pluginDir, plugin, caps)
      return Array.isArray(result) ? Effect.succeed(result) : Effect.fail(result as SymlinkEscape | SchemaViolation)
    }),
})

export const PluginFilesLive = Layer.succeed(PluginFiles, pluginFilesService)

const isDirectoryLink = (path: string, entry: Dirent) => {
  if (!entry.isSymbolicLink()) return false
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}

/** The plugin folders under root; an unreadable root is a rejection naming the root. */
export const discoverPluginFolders = (root: string) =>
  Effect.flatMap(PluginFiles, (files) =>
    files
      .listPluginFolders(root)
      .pipe(Effect.mapError((e) => new SchemaViolation({ plugin: e.root, detail: `the plugin root cannot be read (${e.detail})` }))),
  )
