// Bundles the worker runtime (bootstrap, protocol, linker, effect, @plinth/domain)
// into one file, so a worker starts by parsing one script instead of resolving
// and loading a few hundred modules from node_modules, and writes a V8 code
// cache for it. See ADRs/0012-bundled-worker-runtime.md.
// Run after `tsc -b` (it bundles the compiled output); `npm run build` does both.
import { build } from "esbuild"
import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { writeBuildRecord } from "./build-record.mjs"

const repoDir = join(dirname(fileURLToPath(import.meta.url)), "..")
const runtimeDir = join(repoDir, "packages", "runtime")

const outdir = join(runtimeDir, "dist", "worker-bundle")
// ESM builds first: a package's UMD `main` (jsonc-parser's) hides its requires from the bundler.
const common = { absWorkingDir: repoDir, metafile: true, bundle: true, platform: "node", target: "node20", minify: true, legalComments: "none", logLevel: "warning", mainFields: ["module", "main"] }

/**
 * Runs the runtime script once and writes what V8 compiled as its code cache
 * (written to a temporary name, then renamed, so a worker never reads half a
 * file). Running it compiles the module bodies of `effect` and the runtime,
 * which is most of what a worker would otherwise compile at start.
 *
 * V8 refuses a cache made under other V8 flags. A worker starts with its
 * heap cap (`--max-old-space-size`) but puts V8's flags back to the defaults
 * before it compiles anything (process/DefaultV8Flags.ts), so the cache is
 * made in a Node process started with no V8 flags: every worker starts from
 * it, whatever its cap.
 */
const writeCodeCache = async (contentHash) => {
  execFileSync(process.execPath, [fileURLToPath(import.meta.url), "--code-cache", contentHash], { stdio: "inherit", env: { ...process.env, NODE_OPTIONS: "" } })
}

const writeCodeCacheHere = async (contentHash) => {
  const { codeCacheFile, compileRuntimeScript } = await import(pathToFileURL(join(runtimeDir, "dist", "process", "RuntimeScript.js")).href)
  const runtime = compileRuntimeScript(outdir)
  runtime.run()
  const file = join(outdir, codeCacheFile(contentHash))
  writeFileSync(`${file}.tmp`, runtime.script.createCachedData())
  renameSync(`${file}.tmp`, file)
}

// Two files: the tiny bootstrap reports ready before the runtime bundle is
// even parsed, then loads it (see ADR 0011 for why ready comes first). The
// runtime is CommonJS because it runs as a classic script (RuntimeScript.ts);
// the bootstrap is CommonJS because a CommonJS entry starts without Node's ES
// module loader, whose own modules are compiled (at a few ms) before the entry runs.
export const bundleWorker = async () => {
  mkdirSync(outdir, { recursive: true })
  for (const name of readdirSync(outdir)) rmSync(join(outdir, name), { force: true, recursive: true })
  writeFileSync(join(outdir, "package.json"), JSON.stringify({ type: "module", private: true }) + "\n")
  const runtimeFile = join(outdir, "WorkerRuntime.cjs")
  const { scriptBanner, scriptFooter } = await import(pathToFileURL(join(runtimeDir, "dist", "process", "RuntimeScript.js")).href)
  const runtimeBuild = await build({
    ...common,
    format: "cjs",
    entryPoints: [join(runtimeDir, "dist", "process", "WorkerRuntime.js")],
    outfile: runtimeFile,
    banner: { js: scriptBanner },
    footer: { js: scriptFooter },
  })
  const contentHash = createHash("sha256").update(readFileSync(runtimeFile)).digest("hex").slice(0, 16)
  await writeCodeCache(contentHash)
  const bootstrapBuild = await build({
    ...common,
    format: "cjs",
    entryPoints: [join(runtimeDir, "dist", "process", "bootstrap.js")],
    outfile: join(outdir, "bootstrap.cjs"),
    external: ["./WorkerRuntime.js"],
    banner: { js: '"use strict";var importMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
    define: { PLINTH_RUNTIME_HASH: JSON.stringify(contentHash), "import.meta.url": "importMetaUrl" },
  })
  // The build id the host compares with the compiled files it would otherwise run (BuildId.ts).
  await writeBuildRecord(outdir, [runtimeBuild.metafile, bootstrapBuild.metafile], join(runtimeDir, "package.json"))
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  if (process.argv[2] === "--code-cache") await writeCodeCacheHere(process.argv[3])
  else await bundleWorker()
}
