// Bundles the CLI (the `plinth` command with @effect/cli, effect, the runtime
// and the domain) into one script, so that a command starts by compiling one
// file from a V8 code cache instead of resolving and loading ~930 modules.
// `packages/cli/bin/plinth.js` runs it; see ADRs/0018-cli-start-up-and-packages.md.
// Run after `tsc -b` (it bundles the compiled output); `npm run build` does both.
//
// The library entry points (`dist/index.js` of every package) stay unbundled:
// a host importing @plinth/runtime gets one `effect`, the one it installs.
import { build } from "esbuild"
import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { writeBuildRecord } from "./build-record.mjs"
import { deepImports, sideEffectFree } from "./esbuild-deep-imports.mjs"
import { builtinModules } from "node:module"

/**
 * `import("http")` of a Node built-in, which the OTLP exporter does when it
 * sends: left as is, it fails in the bundle (a `vm.Script` has no dynamic
 * import), so spans were never exported. Each becomes a small bundled module
 * that requires the built-in, loaded only when the import runs.
 */
const dynamicBuiltins = {
  name: "dynamic-builtins",
  setup(build) {
    const builtins = new Set(builtinModules)
    build.onResolve({ filter: /^[a-z:_/]+$/ }, (args) =>
      args.kind === "dynamic-import" && builtins.has(args.path.replace(/^node:/, ""))
        ? { path: args.path.replace(/^node:/, ""), namespace: "dynamic-builtin" }
        : undefined,
    )
    build.onLoad({ filter: /.*/, namespace: "dynamic-builtin" }, (args) => ({ contents: `module.exports = require("node:${args.path}")`, loader: "js" }))
  },
}

const repoDir = join(dirname(fileURLToPath(import.meta.url)), "..")
const cliDir = join(repoDir, "packages", "cli")
const runtimeDist = join(repoDir, "packages", "runtime", "dist")
export const bundleDir = join(cliDir, "dist", "bundle")
export const bundleFile = "plinth.cjs"

const common = {
  absWorkingDir: repoDir,
  metafile: true,
  bundle: true,
  platform: "node",
  target: "node20",
  minify: true,
  legalComments: "none",
  logLevel: "warning",
  // ESM builds first: a package's UMD `main` (jsonc-parser's) hides its requires from the bundler.
  mainFields: ["module", "main"],
  // Only the modules, and members, the code uses: see the plugins.
  plugins: [deepImports(repoDir), sideEffectFree(["jsonc-parser"])],
}

/*
 * Loaded from node_modules when `plinth serve` or `plinth jobs` runs: @effect/platform-node's HTTP
 * server imports them (its client and WebSocket support), which the server never uses. Bundled,
 * they doubled the bundle every command loads (~580 KB), costing each start ~5 ms.
 * @effect/platform-node, a dependency of the CLI, installs them.
 */
const serverOnly = ["undici", "ws"]

/*
 * `plinth serve --cluster` runs from a second bundle, the first plus @plinth/cluster
 * (@effect/cluster, @effect/rpc, @effect/sql, pg, msgpackr: ~320 KB): in the one
 * bundle every command loads, it cost every start ~5 ms (measured: `plugins
 * verify` 162 -> 168 ms median wall), for one command most hosts never run. The
 * launcher runs the second when the command line has `--cluster`. In the first,
 * `@plinth/cluster` is a module that says so, should it ever be imported there.
 */
export const clusterBundleFile = "plinth-cluster.cjs"

const clusterElsewhere = {
  name: "cluster-elsewhere",
  setup(build) {
    build.onResolve({ filter: /^@plinth\/cluster$/ }, () => ({ path: "@plinth/cluster", namespace: "cluster-elsewhere" }))
    build.onLoad({ filter: /.*/, namespace: "cluster-elsewhere" }, () => ({
      contents: `throw new Error("--cluster runs from ${clusterBundleFile}, which the plinth launcher picks when the command line has --cluster")`,
      loader: "js",
    }))
  },
}

export const bundleCli = async () => {
  mkdirSync(bundleDir, { recursive: true })
  for (const name of readdirSync(bundleDir)) rmSync(join(bundleDir, name), { force: true, recursive: true })
  // A classic script (only `vm.Script` takes a code cache on Node 20), wrapped
  // in a function taking what a CommonJS module expects; the launcher calls it.
  // `import.meta.url` is the bundle's own URL, so files the runtime finds next
  // to its module (the hashing thread, the module hooks) are put next to the bundle.
  const cliBundle = (outfile, plugins) =>
    build({
      ...common,
      format: "cjs",
      entryPoints: [join(cliDir, "dist", "bin.js")],
      outfile: join(bundleDir, outfile),
      banner: { js: '(function (exports, require, module, __filename, __dirname) {var importMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
      footer: { js: "\n})" },
      define: { "import.meta.url": "importMetaUrl" },
      // better-sqlite3 is loaded from node_modules at run time: its `bindings` finds the native addon
      // from the caller's file name, which fails inside a bundle (every database command failed).
      // pg-native is pg's optional native binding, required only when asked for (`pg.native`); Plinth never asks.
      external: ["better-sqlite3", "pg-native", ...serverOnly],
      plugins: [...common.plugins, dynamicBuiltins, ...plugins],
    })
  const main = await cliBundle(bundleFile, [clusterElsewhere])
  const cluster = await cliBundle(clusterBundleFile, [])
  // Each runs in a thread of its own (HashingPool.ts, VerifiedImport.ts): ES modules, self-contained.
  const sidecars = await build({
    ...common,
    format: "esm",
    entryPoints: [join(runtimeDist, "hashing", "HashingWorker.js"), join(runtimeDist, "loading", "VerifiedModuleHooks.js")],
    outdir: bundleDir,
    entryNames: "[name]",
  })
  const hashOf = (file) => createHash("sha256").update(readFileSync(join(bundleDir, file))).digest("hex").slice(0, 16)
  await writeBuildRecord(bundleDir, [main.metafile, cluster.metafile, sidecars.metafile], join(cliDir, "package.json"), {
    bundle: bundleFile,
    bundleHash: hashOf(bundleFile),
    clusterBundle: clusterBundleFile,
    clusterBundleHash: hashOf(clusterBundleFile),
    compilerState: compilerState(),
  })
  writeCodeCache()
}

/**
 * The SHA-256 of each package's `tsconfig.tsbuildinfo`, which `tsc -b`
 * rewrites whenever it emits: in a source checkout the launcher compares these
 * (three reads) rather than every input (a hundred), to stay cheap at start.
 */
const compilerState = () =>
  Object.fromEntries(
    ["domain", "runtime", "cluster", "server", "cli"].map((name) => {
      const file = join(repoDir, "packages", name, "tsconfig.tsbuildinfo")
      return [`packages/${name}/tsconfig.tsbuildinfo`, existsSync(file) ? createHash("sha256").update(readFileSync(file)).digest("hex") : null]
    }),
  )

/**
 * Runs the command once through its launcher, which writes the V8 code cache
 * when there is none (taken after the run, it holds the functions the run
 * compiled too). Under no V8 flags: V8 refuses a cache made under other flags.
 * The warm-up is `plugins verify` with the command name in capitals: the
 * parser reads that (a plain line skips it, see PlainCommandLine.ts), so the
 * cache holds the parser, which every other command compiles, as well as all
 * a plain `verify` runs but a few small functions. Measured, `verify` starts
 * as fast from such a cache as from one made by a plain `verify`, and `list`
 * ~13 ms of CPU faster (ADR 0018).
 */
const writeCodeCache = () => {
  const warmUp = existsSync(join(repoDir, "examples", "plugins"))
    ? ["plugins", "VERIFY", "--root", join(repoDir, "examples", "plugins"), "--lock", join(repoDir, "PLUGINS.lock")]
    : ["--help"]
  // The cluster bundle's too (the launcher picks it for --cluster), so that an installed copy in a folder
  // the user cannot write still starts `serve --cluster` from a cache.
  for (const args of [warmUp, ["serve", "--cluster", "--help"]]) {
    try {
      execFileSync(process.execPath, [join(cliDir, "bin", "plinth.js"), ...args], { stdio: "ignore", env: { ...process.env, NODE_OPTIONS: "" } })
    } catch {
      // A failing verify (a lock not yet updated) still compiled what a run compiles, and wrote the cache.
    }
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await bundleCli()
