import { afterAll, describe, expect, it } from "@effect/vitest"
import { existsSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Effect } from "effect"
import { startInstance } from "@plinth/runtime"
import { tempDir } from "../support/plugins.js"
import { hostilePlugin, IsolationTestLive, tiers } from "./support/isolation.js"

const root = tempDir("plinth-hostile-fs-")
afterAll(() => rmSync(root, { recursive: true, force: true }))
const secret = join(root, "host-secret.txt")
writeFileSync(secret, "the host's secret")

const probes = `
  readDisk: action({ description: "", input: Schema.Struct({ path: Schema.String }), output: Schema.String, handler: ({ path }) => Effect.sync(() => readFileSync(path, "utf8")) }),
  readAsset: action({ description: "", input: Schema.Struct({ path: Schema.String }), output: Schema.String, handler: ({ path }, { files }) => files.readText(path) }),
  assetBytes: action({ description: "", input: Schema.Struct({ path: Schema.String }), output: Schema.Array(Schema.Number), handler: ({ path }, { files }) => Effect.map(files.read(path), (bytes) => { const copy = [...bytes]; bytes[0] = 0; return copy }) }),
  listAssets: action({ description: "", input: Schema.Struct({}), output: Schema.Array(Schema.String), handler: (_, { files }) => files.list("data/") }),
  requireFromDisk: action({ description: "", input: Schema.Struct({ dir: Schema.String }), output: Schema.String, handler: ({ dir }) => Effect.sync(() => String(createRequire(dir + "/")("./late.cjs"))) }),
  vmDefaultLoader: action({ description: "", input: Schema.Struct({ dir: Schema.String }), output: Schema.String, handler: ({ dir }) =>
    Effect.tryPromise({ try: () => new vm.Script("import(" + JSON.stringify(pathToFileURL(dir + "/late.mjs").href) + ")", { importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER }).runInThisContext().then((m) => String(m.default)), catch: (e) => e }) }),
  importFileUrl: action({ description: "", input: Schema.Struct({ dir: Schema.String }), output: Schema.String, handler: ({ dir }) =>
    Effect.tryPromise({ try: () => import(pathToFileURL(dir + "/late.mjs").href).then((m) => String(m.default)), catch: (e) => e }) }),
  ranLate: action({ description: "", input: Schema.Struct({}), output: Schema.Boolean, handler: () => Effect.sync(() => globalThis.__lateRan === true) }),
`
const prelude = `import { readFileSync } from "node:fs"; import { createRequire } from "node:module"; import vm from "node:vm"; import { pathToFileURL } from "node:url"`

describe.each(tiers)("isolation tier %s: the plugin folder is not visible on disk", (tier) => {
  it.scopedLive("a symlink swapped into the plugin folder after start leads nowhere; context.files still serves the verified bytes", () =>
    Effect.gen(function* () {
      const { plugin, locked } = yield* hostilePlugin(root, `swap-${tier}`, {
        actions: probes,
        prelude,
        files: { "data/words.txt": "verified words\n", "data/more.txt": "more\n" },
      })
      const instance = yield* startInstance({ plugin, locked, drift: "ignore", isolation: tier })
      const asset = join(plugin.dir, "data", "words.txt")
      // After verification, someone with write access to the folder swaps the asset for a link to a host secret.
      unlinkSync(asset)
      symlinkSync(secret, asset)
      const viaLink = yield* Effect.flip(instance.invoke("readDisk", { path: asset }))
      expect(viaLink).toMatchObject({ _tag: "SandboxDenied", permission: "fs-read" })
      expect(JSON.stringify(viaLink)).not.toContain("the host's secret")
      expect(yield* Effect.flip(instance.invoke("readDisk", { path: secret }))).toMatchObject({ _tag: "SandboxDenied", permission: "fs-read" })
      expect(yield* Effect.flip(instance.invoke("readDisk", { path: join(plugin.dir, "plugin.json") }))).toMatchObject({ _tag: "SandboxDenied" })
      // The plugin reads what was reviewed and locked, whatever the folder holds now.
      expect(yield* instance.invoke("readAsset", { path: "data/words.txt" })).toBe("verified words\n")
      expect(yield* instance.invoke("listAssets", {})).toEqual(["data/more.txt", "data/words.txt"])
      // Bytes, a fresh copy each time: writing into one changes nothing the plugin reads later.
      expect(yield* instance.invoke("assetBytes", { path: "data/more.txt" })).toEqual([...Buffer.from("more\n")])
      expect(yield* instance.invoke("assetBytes", { path: "data/more.txt" })).toEqual([...Buffer.from("more\n")])
      const missing = yield* Effect.flip(instance.invoke("readAsset", { path: "data/../../host-secret.txt" }))
      expect(missing).toMatchObject({ _tag: "PluginFatalError" })
      expect(missing.message).toContain("is not a verified file of the plugin")
    }).pipe(Effect.provide(IsolationTestLive)),
  )

  it.scopedLive("code dropped into the plugin folder after start cannot be loaded: createRequire, vm with the default loader, import() of a file URL", () =>
    Effect.gen(function* () {
      const { plugin, locked } = yield* hostilePlugin(root, `late-${tier}`, { actions: probes, prelude })
      const instance = yield* startInstance({ plugin, locked, drift: "ignore", isolation: tier })
      writeFileSync(join(plugin.dir, "late.cjs"), `globalThis.__lateRan = true; module.exports = "unverified"`)
      writeFileSync(join(plugin.dir, "late.mjs"), `globalThis.__lateRan = true; export default "unverified"`)
      // Permission tier: the read is refused. OS tier: the folder is not even there (bwrap does not mount it).
      const notLoadable = (failure: { readonly _tag: string; readonly message: string }) =>
        tier === "permissions"
          ? expect(failure).toMatchObject({ _tag: "SandboxDenied", permission: "fs-read" })
          : expect(failure.message).toMatch(/Cannot find module|ERR_MODULE_NOT_FOUND|ENOENT|SandboxDenied|denied fs-read/)
      notLoadable(yield* Effect.flip(instance.invoke("requireFromDisk", { dir: plugin.dir })))
      notLoadable(yield* Effect.flip(instance.invoke("vmDefaultLoader", { dir: plugin.dir })))
      expect(yield* Effect.flip(instance.invoke("importFileUrl", { dir: plugin.dir }))).toMatchObject({ _tag: "SandboxDenied", permission: "import" })
      expect(yield* instance.invoke("ranLate", {})).toBe(false)
      expect(existsSync(join(plugin.dir, "late.mjs"))).toBe(true)
    }).pipe(Effect.provide(IsolationTestLive)),
  )

  it.scopedLive(
    tier === "os"
      ? "a link someone else placed in the plugin's data folder leads to nothing: host files are not mounted"
      : "a link someone else placed in the plugin's data folder IS followed: the permission model alone does not stop it",
    () =>
      Effect.gen(function* () {
        const dataRoot = join(root, `data-${tier}`)
        const { plugin, locked } = yield* hostilePlugin(root, `datalink-${tier}`, { actions: probes, prelude, manifest: { permissions: { dataDir: true } } })
        yield* startInstance({ plugin, locked, drift: "ignore", isolation: tier, dataRoot })
        const link = join(dataRoot, plugin.id, "link.txt")
        symlinkSync(secret, link)
        const instance = yield* startInstance({ plugin, locked, drift: "ignore", isolation: tier, dataRoot })
        const read = yield* Effect.either(instance.invoke("readDisk", { path: link }))
        if (tier === "os") {
          expect(read._tag).toBe("Left")
          expect(JSON.stringify(read)).not.toContain("the host's secret")
        } else {
          // Honest: README, sandbox table. The OS tier is the answer to this one.
          expect(read).toMatchObject({ _tag: "Right", right: "the host's secret" })
        }
      }).pipe(Effect.provide(IsolationTestLive)),
  )
})
