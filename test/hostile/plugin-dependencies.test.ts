import { symlinkSync } from "node:fs"
import { build } from "esbuild"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { Effect, Either, Layer, Schema } from "effect"
import { declarationOf, definePlugin } from "@plinth/domain"
import { loadPlugins, PlinthLive, Registry, RegistryLive, startVerifiedPlugin } from "@plinth/runtime"
import { lockNow, workspace, writeFile, writePlugin } from "../support/plugins.js"

/*
 * A plugin ships its dependencies in its own node_modules (ADR 21). Attack:
 * reach past that folder for code that was not verified with the plugin: a
 * package the host has (ajv sits in this repository's node_modules), a
 * package in a node_modules above the plugin folder, a `../` path out of a
 * dependency, a CommonJS dependency whose require would read the disk.
 * Each is refused, typed, in a worker and in-process alike; what the plugin
 * ships resolves from the verified bytes.
 */

const repoModules = join(import.meta.dirname, "..", "..", "node_modules")
const pkg = (value: unknown) => JSON.stringify(value)

/** A plugin that imports `specifier` at call time (action `load`) and, with `atLoad`, in its entry too. */
const importer = (imports: string, atLoad = "") =>
  `${atLoad}import { Effect, Schema } from "effect"\nimport { definePlugin } from "@plinth/domain"\n` +
  `export default definePlugin({ config: Schema.Struct({}), actions: ({ action }) => ({\n` +
  `  load: action({ description: "imports", input: Schema.Struct({}), output: Schema.Unknown,\n` +
  `    handler: () => Effect.map(Effect.tryPromise(() => import(${JSON.stringify(imports)})), (m) => m.default) }),\n}) })\n`

/** What `importer` declares, so its plugin.json is what `describe --write` would make (no drift at start). */
const declared = declarationOf(
  definePlugin({
    config: Schema.Struct({}),
    actions: ({ action }) => ({ load: action({ description: "imports", input: Schema.Struct({}), output: Schema.Unknown, handler: () => Effect.void }) }),
  }),
)
const manifest = { actions: declared.actions, config: declared.config }

/** A fresh workspace whose folder above the plugin root holds a node_modules with the host's packages (ajv among them). */
const hostileWorkspace = () => {
  const ws = workspace()
  symlinkSync(repoModules, join(ws.dir, "node_modules"))
  return ws
}

/** Starts `id` in a worker, calls `load`, returns its outcome. */
const callInWorker = (root: string, lock: string, id: string) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const instance = yield* startVerifiedPlugin({ root, lock, plugin: id, startOptions: { isolation: "permissions" } })
        return yield* instance.invoke("load", {})
      }),
    ).pipe(Effect.either, Effect.provide(PlinthLive)),
  )

/** Loads every plugin in-process; the rejection's detail, or the loaded modules. */
const loadInProcess = (root: string, lock: string) =>
  Effect.runPromise(
    Effect.gen(function* () {
      yield* loadPlugins({ root, lock })
      return yield* Effect.flatMap(Registry, (r) => r.list)
    }).pipe(Effect.either, Effect.provide(Layer.merge(RegistryLive, PlinthLive))),
  )

const describeFor = (id: string) => async (root: string, lock: string) => {
  await lockNow(root, lock)
  return { worker: await callInWorker(root, lock, id), inProcess: await loadInProcess(root, lock) }
}

const leftOf = <A, E>(either: Either.Either<A, E>): E => {
  if (Either.isRight(either)) throw new Error(`expected a failure, got ${JSON.stringify(either.right)}`)
  return either.left
}

describe.concurrent("hostile: a plugin reaching past its own node_modules", () => {
  it("a package the host has but the plugin does not ship (ajv) is refused: SandboxDenied in a worker, PluginImportError in-process", async () => {
    const ws = hostileWorkspace()
    writePlugin(ws.root, { id: "borrower", manifest, files: { "index.js": importer("ajv") } })
    const { worker } = await describeFor("borrower")(ws.root, ws.lock)
    expect(leftOf(worker)).toMatchObject({ _tag: "SandboxDenied", permission: "import", resource: "ajv" })
    expect(leftOf(worker).message).toContain("ships no such package in its node_modules")

    // In-process the import happens at load: the entry imports ajv.
    writePlugin(ws.root, { id: "borrower", files: { "index.js": `import Ajv from "ajv"\nexport default Ajv\n` } })
    await lockNow(ws.root, ws.lock)
    expect(leftOf(await loadInProcess(ws.root, ws.lock))).toMatchObject({ _tag: "PluginImportError", plugin: "borrower" })
    expect(JSON.stringify(leftOf(await loadInProcess(ws.root, ws.lock)))).toContain("'ajv' is not a package of plugin 'borrower'")
  })

  it("a package in a node_modules above the plugin folder is not found: the lookup stops at the plugin folder", async () => {
    const ws = workspace()
    writeFile(join(ws.dir, "node_modules/above/package.json"), pkg({ name: "above", type: "module", exports: "./index.js" }))
    writeFile(join(ws.dir, "node_modules/above/index.js"), `export default "unverified code"\n`)
    writePlugin(ws.root, { id: "climber", manifest, files: { "index.js": importer("above") } })
    const { worker } = await describeFor("climber")(ws.root, ws.lock)
    expect(leftOf(worker)).toMatchObject({ _tag: "SandboxDenied", permission: "import", resource: "above" })

    writePlugin(ws.root, { id: "climber", files: { "index.js": `export { default } from "above"\n` } })
    await lockNow(ws.root, ws.lock)
    const inProcess = leftOf(await loadInProcess(ws.root, ws.lock))
    expect(inProcess).toMatchObject({ _tag: "PluginImportError", plugin: "climber" })
    expect(JSON.stringify(inProcess)).toContain("'above' is not a package of plugin 'climber'")
  })

  it("a '../' path out of a dependency is refused, into the plugin's own code or out of the plugin", async () => {
    // The host's packages are reachable from the plugins' parent, so that in-process the entry's effect resolves.
    const ws = hostileWorkspace()
    writePlugin(ws.root, { id: "victim", files: { "index.js": `export default "another plugin's code"\n` } })
    const files = {
      "index.js": importer("escaper"),
      "lib/private.js": `export default "the plugin's own code"\n`,
      "node_modules/escaper/package.json": pkg({ name: "escaper", type: "module", exports: { ".": "./index.js", "./out": "./out.js" } }),
      "node_modules/escaper/index.js": `export { default } from "../../lib/private.js"\n`,
      "node_modules/escaper/out.js": `export { default } from "../../../victim/index.js"\n`,
    }
    writePlugin(ws.root, { id: "escapes", manifest, files })
    const { worker, inProcess } = await describeFor("escapes")(ws.root, ws.lock)
    expect(leftOf(worker)).toMatchObject({ _tag: "SandboxDenied", permission: "import", resource: "../../lib/private.js" })
    expect(leftOf(worker).message).toContain("leaves the package 'node_modules/escaper'")
    // In-process the entry only imports at call time: loading succeeds, the import does not.
    expect(Either.isRight(inProcess)).toBe(true)
    const registered = Either.getOrThrow(inProcess).find((p) => p.id === "escapes")!
    const handler = (registered.module as any).default.actions.load.handler
    const inHost = await Effect.runPromise(Effect.either(handler({}, {})))
    expect(String((inHost as any).left?.error)).toContain("leaves the package 'node_modules/escaper'")

    writePlugin(ws.root, { id: "escapes", manifest, files: { ...files, "index.js": importer("escaper/out") } })
    const out = await describeFor("escapes")(ws.root, ws.lock)
    expect(leftOf(out.worker)).toMatchObject({ _tag: "SandboxDenied", permission: "import", resource: "../../../victim/index.js" })
  })

  it("a CommonJS dependency is refused with the way out (bundle it), in a worker and in-process", async () => {
    const ws = workspace()
    const files = {
      "index.js": importer("old-style"),
      "node_modules/old-style/package.json": pkg({ name: "old-style", main: "index.js" }),
      "node_modules/old-style/index.js": `module.exports = require("fs").readFileSync("/etc/hostname", "utf8")\n`,
    }
    writePlugin(ws.root, { id: "cjs-dep", manifest, files })
    const { worker } = await describeFor("cjs-dep")(ws.root, ws.lock)
    expect(leftOf(worker)).toMatchObject({ _tag: "SandboxDenied", permission: "import", resource: "old-style" })
    expect(leftOf(worker).message).toContain("is CommonJS")
    expect(leftOf(worker).message).toContain("bundle a CommonJS dependency into the plugin with esbuild")

    writePlugin(ws.root, { id: "cjs-dep", files: { ...files, "index.js": `export { default } from "old-style"\n` } })
    await lockNow(ws.root, ws.lock)
    expect(JSON.stringify(leftOf(await loadInProcess(ws.root, ws.lock)))).toContain("is CommonJS")
  })
})

describe.concurrent("a plugin's own dependencies", () => {
  it("resolve in a worker from its verified node_modules: exports conditions, subpaths, module field, nested packages, JSON", async () => {
    const ws = hostileWorkspace()
    writePlugin(ws.root, {
      id: "owner",
      manifest,
      files: {
        "index.js": importer("./lib/all.js"),
        "lib/all.js":
          `import cond from "cond"\nimport sub from "cond/extra"\nimport modern from "modern"\nimport nested from "@scope/outer"\n` +
          `export default { cond, sub, modern, nested }\n`,
        "node_modules/cond/package.json": pkg({
          name: "cond",
          type: "module",
          exports: { ".": { require: "./cjs.cjs", import: "./esm.js" }, "./extra": "./extra/index.js" },
        }),
        "node_modules/cond/esm.js": `export default "esm"\n`,
        "node_modules/cond/cjs.cjs": `module.exports = "cjs"\n`,
        "node_modules/cond/extra/index.js": `export default "extra"\n`,
        // No "type": its `module` field names an ES module build, as bundlers read it.
        "node_modules/modern/package.json": pkg({ name: "modern", main: "dist/index.cjs", module: "dist/index.js" }),
        "node_modules/modern/dist/index.js": `import data from "./data.json"\nexport default data.name\n`,
        "node_modules/modern/dist/data.json": `{"name": "modern"}`,
        "node_modules/@scope/outer/package.json": pkg({ name: "@scope/outer", type: "module", exports: "./index.js" }),
        "node_modules/@scope/outer/index.js": `import inner from "inner"\nexport default "outer+" + inner\n`,
        "node_modules/@scope/outer/node_modules/inner/package.json": pkg({ name: "inner", type: "module", main: "main.js" }),
        "node_modules/@scope/outer/node_modules/inner/main.js": `export default "inner"\n`,
      },
    })
    const { worker } = await describeFor("owner")(ws.root, ws.lock)
    expect(Either.getOrThrow(worker)).toEqual({ cond: "esm", sub: "extra", modern: "modern", nested: "outer+inner" })
  })

  it("a CommonJS dependency bundled into the plugin with esbuild, as the README says, runs", async () => {
    const ws = hostileWorkspace()
    const src = join(ws.dir, "src")
    writeFile(join(src, "node_modules/old-style/package.json"), pkg({ name: "old-style", main: "index.js" }))
    writeFile(join(src, "node_modules/old-style/index.js"), `module.exports = { shout: (s) => s.toUpperCase() + "!" }\n`)
    writeFile(join(src, "index.js"), importer("./shout.js").replace("import(\"./shout.js\")", "Promise.resolve({ default: old.shout('bundled') })").replace(
      `import { definePlugin } from "@plinth/domain"\n`,
      `import { definePlugin } from "@plinth/domain"\nimport old from "old-style"\n`,
    ))
    writePlugin(ws.root, { id: "bundled", manifest, files: {} })
    await build({
      entryPoints: [join(src, "index.js")],
      bundle: true,
      format: "esm",
      platform: "node",
      outfile: join(ws.root, "bundled", "index.js"),
      external: ["effect", "@plinth/domain"],
      logLevel: "silent",
    })
    const { worker, inProcess } = await describeFor("bundled")(ws.root, ws.lock)
    expect(Either.getOrThrow(worker)).toBe("BUNDLED!")
    expect(Either.isRight(inProcess)).toBe(true)
  })
})
