// An esbuild plugin for the CLI bundle: in the workspace's compiled files, imports
// from a package's index become imports from the module that defines each name.
//
// - `import { Schema, Effect } from "effect"` -> `import * as Schema from "effect/Schema"`
//   (the same for @effect/cli and @effect/platform). Each name in those indexes is an
//   `export * as Name from "./Name.js"` re-export, and esbuild keeps every export of a
//   module reached that way (it builds the namespace object), so a bundle made from
//   the index holds, and evaluates at every start, all of `Schema`, `Stream`, `toml`,
//   `yaml`… whether used or not. Through `import * as`, esbuild keeps only the members
//   the code names: bundle 1.1 MB -> 0.65 MB, ~13 ms less per `verify` (ADR 0018).
// - `import { discoverAndVerify } from "@plinth/runtime"` -> from the runtime's
//   `loading/Loader.js` (the same for @plinth/domain). The CLI loads each command's
//   modules only when it runs (`bin.ts` imports them dynamically, and esbuild makes
//   such modules lazily evaluated); through the index, the first name used would
//   evaluate every module of the package (worker start-up, child processes, threads).
import { readFileSync, realpathSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join, resolve } from "node:path"
import { pathToFileURL } from "node:url"

/** The barrels rewritten, and where their `export * as` lines are. */
const barrels = ["effect", "@effect/cli", "@effect/platform"]

/** name -> module specifier, from a barrel's ESM index (`export * as Schema from "./Schema.js"`). */
const namespacesOf = (repoDir, barrel) => {
  const require = createRequire(join(repoDir, "package.json"))
  const packageDir = join(require.resolve(`${barrel}/package.json`), "..")
  const index = readFileSync(join(packageDir, "dist", "esm", "index.js"), "utf8")
  const names = new Map()
  for (const [, name, file] of index.matchAll(/^export \* as (\w+) from "\.\/(\w+)\.js";?$/gm)) names.set(name, `${barrel}/${file}`)
  if (names.size === 0) throw new Error(`no 'export * as' re-exports found in ${barrel}'s index: the deep-import rewrite needs updating`)
  return names
}

/** The workspace packages whose index is only `export * from "./X.js"` lines (and re-exports of another of them). */
const workspaceBarrels = { "@plinth/domain": join("packages", "domain", "dist", "index.js"), "@plinth/runtime": join("packages", "runtime", "dist", "index.js") }

/**
 * name -> the module file that exports it, for a workspace package's index,
 * by importing each module the index re-exports (at build time, in this
 * process: they are the compiled files being bundled) and listing its exports.
 */
const workspaceNamesOf = async (repoDir, barrel, known) => {
  const index = join(repoDir, workspaceBarrels[barrel])
  const text = readFileSync(index, "utf8")
  const names = new Map()
  for (const [, file] of text.matchAll(/^export \* from "(\.[^"]+)";$/gm)) {
    const path = realpathSync(resolve(dirname(index), file))
    for (const name of Object.keys(await import(pathToFileURL(path).href))) if (!names.has(name)) names.set(name, path)
  }
  for (const [, list, other] of text.matchAll(/^export \{([^}]*)\} from "(@plinth\/\w+)";$/gm))
    for (const name of list.split(",").map((s) => s.trim()))
      if (known.get(other)?.has(name) && !names.has(name)) names.set(name, known.get(other).get(name))
  return names
}

/** `import { A, B as C } from "barrel";` on one line, as tsc emits it. */
const importLine = /^import \{([^}]*)\} from "(effect|@effect\/cli|@effect\/platform|@plinth\/domain|@plinth\/runtime)";$/gm

/** Rewrites one compiled file's imports; names an index exports otherwise (e.g. `pipe`) stay as they are. */
export const rewriteImports = (text, namespaces, workspace) =>
  text.replace(importLine, (_line, specifiers, barrel) => {
    const kept = []
    const lines = []
    const byFile = new Map()
    for (const specifier of specifiers.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
      const [name, alias] = specifier.split(/\s+as\s+/)
      if (namespaces.get(barrel)?.has(name)) lines.push(`import * as ${alias ?? name} from "${namespaces.get(barrel).get(name)}";`)
      else if (workspace.get(barrel)?.has(name)) {
        const file = workspace.get(barrel).get(name)
        byFile.set(file, [...(byFile.get(file) ?? []), specifier])
      } else kept.push(specifier)
    }
    for (const [file, list] of byFile) lines.push(`import { ${list.join(", ")} } from ${JSON.stringify(file)};`)
    if (kept.length > 0) lines.push(`import { ${kept.join(", ")} } from "${barrel}";`)
    // One line for one: line numbers (and source maps) stay put.
    return lines.join(" ")
  })

/** The plugin, for the compiled files of the workspace packages (`packages/<name>/dist/**.js`). */
export const deepImports = (repoDir) => {
  const namespaces = new Map(barrels.map((barrel) => [barrel, namespacesOf(repoDir, barrel)]))
  return {
    name: "plinth-deep-imports",
    async setup(build) {
      // The domain first: the runtime's index re-exports some of its names.
      const workspace = new Map()
      for (const barrel of ["@plinth/domain", "@plinth/runtime"]) workspace.set(barrel, await workspaceNamesOf(repoDir, barrel, workspace))
      build.onLoad({ filter: /[\\/]packages[\\/][^\\/]+[\\/]dist[\\/].*\.js$/ }, (args) => ({
        contents: rewriteImports(readFileSync(args.path, "utf8"), namespaces, workspace),
        loader: "js",
      }))
    },
  }
}

/**
 * Marks packages whose modules only define things as free of side effects, so
 * that esbuild leaves out the modules of theirs nothing uses. jsonc-parser's
 * index imports its formatter and editor, and the formatter builds ~1,000
 * indentation strings when evaluated (~2 ms per start); Plinth uses only its
 * parser. (Its package.json does not say `sideEffects: false` itself.)
 */
export const sideEffectFree = (packages) => ({
  name: "plinth-side-effect-free",
  setup(build) {
    const inside = (path) => packages.some((name) => path.split(/[\\/]/).includes(name))
    build.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData?.resolving === true) return undefined
      if (!packages.includes(args.path) && !(args.path.startsWith(".") && inside(args.importer))) return undefined
      const resolved = await build.resolve(args.path, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: { resolving: true },
      })
      if (resolved.errors.length > 0) return { errors: resolved.errors }
      return { path: resolved.path, namespace: resolved.namespace, external: resolved.external, sideEffects: false }
    })
  },
})
