import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { join } from "node:path"
import vm from "node:vm"

/*
 * The bundled worker runtime runs as a classic script so that V8 can start it
 * from a code cache: on Node 20 only `vm.Script` takes `cachedData`, ES
 * modules cannot. `scripts/bundle-worker.mjs` bundles the runtime as CommonJS
 * (`WorkerRuntime.cjs`), runs it once and writes the code cache next to it;
 * a worker compiles the same wrapped source with that cache (ADR 0012).
 *
 * The cache file's name carries the bundle's content hash (V8 itself checks
 * only the source length, its own version and its flags) and the V8 version
 * and architecture, so a cache made by another build or another Node is
 * simply not found. A cache V8 still refuses (`cachedDataRejected`) costs
 * nothing but the normal compile; a missing one likewise.
 *
 * The script must not use a dynamic import(): one compiled into a code cache
 * fails in another process with "A dynamic import callback was not
 * specified" (Node 20 keeps the callback's key in the cached code), so the
 * bootstrap hands the runtime its import function instead.
 */

export const runtimeScriptFile = "WorkerRuntime.cjs"

export const codeCacheFile = (contentHash: string): string =>
  `WorkerRuntime.${contentHash}.${process.versions.v8}-${process.arch}.cache`

/**
 * What the bundler puts around the CommonJS bundle, so that the file is the
 * script as it runs (one string, no copy): a function taking what a CommonJS
 * module expects.
 */
export const scriptBanner = "(function (exports, require, module) {"
export const scriptFooter = "\n})"

export interface RuntimeScript {
  readonly script: vm.Script
  /** Evaluates the bundle and returns its exports. */
  readonly run: () => Record<string, unknown>
}

export const compileRuntimeScript = (dir: string, cachedData?: Buffer): RuntimeScript => {
  const filename = join(dir, runtimeScriptFile)
  const script = new vm.Script(readFileSync(filename, "utf8"), {
    filename,
    ...(cachedData !== undefined ? { cachedData } : {}),
  })
  return {
    script,
    run: () => {
      const module = { exports: {} as Record<string, unknown> }
      script.runInThisContext()(module.exports, createRequire(filename), module)
      return module.exports
    },
  }
}

/** Loads the bundled runtime, from its code cache when there is a usable one. */
export const loadRuntimeScript = (dir: string, contentHash: string): Record<string, unknown> => {
  let cachedData: Buffer | undefined
  try {
    cachedData = readFileSync(join(dir, codeCacheFile(contentHash)))
  } catch {
    // No cache for this build and this Node: compile from source.
  }
  return compileRuntimeScript(dir, cachedData).run()
}
