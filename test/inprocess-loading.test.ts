import { readdirSync, symlinkSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer } from "effect"
import { isPluginDefinition } from "@plinth/domain"
import { loadPlugins, makeRegistry, PlinthLive, Registry, RegistryLive } from "@plinth/runtime"
import { lockNow, witnessModule, workspace, writeFile, writePlugin } from "./support/plugins.js"

/*
 * What a plugin loaded in-process (the default PluginModuleLoader) sees: every
 * module of its own, including its own node_modules, comes from the verified
 * bytes; the host's packages load as the host's (ADR 0014).
 */

/** Loads into a fresh registry; the loaded plugins' module namespaces by id, or the rejection. */
const load = (root: string, lock: string) =>
  Effect.runPromise(
    Effect.either(
      Effect.gen(function* () {
        yield* loadPlugins({ root, lock })
        const registered = yield* Effect.flatMap(Registry, (r) => r.list)
        return Object.fromEntries(registered.map((p) => [p.id, p.module as { default: any }]))
      }).pipe(Effect.provide(RegistryLive), Effect.provide(PlinthLive)),
    ),
  )

const loaded = async (root: string, lock: string) => {
  const outcome = await load(root, lock)
  if (Either.isLeft(outcome)) throw new Error(`expected a load, got ${JSON.stringify(outcome.left)}`)
  return outcome.right
}

const importFailure = async (root: string, lock: string) => {
  const outcome = await load(root, lock)
  if (Either.isRight(outcome) || outcome.left._tag !== "PluginImportError") throw new Error(`expected a PluginImportError, got ${JSON.stringify(outcome)}`)
  return outcome.left.detail
}

const pkg = (value: unknown) => JSON.stringify(value)

describe("in-process loading: a plugin's modules come from its verified bytes", () => {
  it("relative imports, JSON, dynamic imports and import.meta name the real files, marked as one verified load", async () => {
    const ws = workspace()
    writePlugin(ws.root, {
      id: "plain",
      files: {
        "index.js":
          `import { two } from "./lib/two.js"\n` +
          `import data from "./data.json" with { type: "json" }\n` +
          `export default { two, data, url: import.meta.url, filename: import.meta.filename, later: () => import("./lib/later.mjs") }\n`,
        "lib/two.js": `export const two = 2\n`,
        "lib/later.mjs": `export const later = "verified"\n`,
        "data.json": `{ "n": 1 }`,
      },
    })
    await lockNow(ws.root, ws.lock)
    const { plain } = await loaded(ws.root, ws.lock)
    expect(plain!.default.two).toBe(2)
    expect(plain!.default.data).toEqual({ n: 1 })
    expect(plain!.default.filename).toBe(join(ws.root, "plain", "index.js"))
    expect(plain!.default.url).toMatch(/^file:\/\/.*\/plain\/index\.js\?plinth-verified=[0-9a-f-]{36}$/)
    // A module imported at call time comes from the bytes verified at load, not from the file now on disk.
    writeFile(join(ws.root, "plain", "lib/later.mjs"), `export const later = "swapped"\n`)
    expect((await plain!.default.later()).later).toBe("verified")
  })

  it("the plugin's own node_modules: exports with conditions, subpaths, scoped packages, legacy main, #imports", async () => {
    const ws = workspace()
    writePlugin(ws.root, {
      id: "deps",
      files: {
        "package.json": pkg({ type: "module", imports: { "#util": "./lib/util.js" } }),
        "index.js":
          `import cond from "cond"\nimport sub from "cond/extra"\nimport scoped from "@scope/pkg"\n` +
          `import legacy from "legacy"\nimport util from "#util"\n` +
          `export default { cond, sub, scoped, legacy, util }\n`,
        "lib/util.js": `export default "util"\n`,
        "node_modules/cond/package.json": pkg({
          name: "cond",
          type: "module",
          exports: { ".": { require: "./cjs.cjs", import: "./esm.js", default: "./cjs.cjs" }, "./extra": "./extra/index.js" },
        }),
        "node_modules/cond/esm.js": `export default "esm"\n`,
        "node_modules/cond/cjs.cjs": `module.exports = "cjs"\n`,
        "node_modules/cond/extra/index.js": `export default "extra"\n`,
        "node_modules/@scope/pkg/package.json": pkg({ name: "@scope/pkg", type: "module", exports: "./main.mjs" }),
        "node_modules/@scope/pkg/main.mjs": `import cond from "cond"\nexport default "scoped+" + cond\n`,
        "node_modules/legacy/package.json": pkg({ name: "legacy", type: "module", main: "lib/entry" }),
        "node_modules/legacy/lib/entry.js": `export default "legacy"\n`,
      },
    })
    await lockNow(ws.root, ws.lock)
    const { deps } = await loaded(ws.root, ws.lock)
    expect(deps!.default).toEqual({ cond: "esm", sub: "extra", scoped: "scoped+esm", legacy: "legacy", util: "util" })
  })

  it("the host's packages (effect, @plinth/domain) load as the host's own: one instance for host and plugin", async () => {
    const ws = workspace()
    // The host's packages, found by walking up from the folder that holds the plugins, as Node would.
    symlinkSync(join(import.meta.dirname, "..", "node_modules"), join(ws.dir, "node_modules"))
    writePlugin(ws.root, {
      id: "host-deps",
      files: { "index.js": `import * as effect from "effect"\nimport * as domain from "@plinth/domain"\nexport default { effect, domain }\n` },
    })
    await lockNow(ws.root, ws.lock)
    const plugin = (await loaded(ws.root, ws.lock))["host-deps"]!.default
    expect(plugin.effect.Effect).toBe((await import("effect")).Effect)
    expect(plugin.domain.definePlugin).toBe((await import("@plinth/domain")).definePlugin)
  })

  it("a package in the plugin's own node_modules comes before the host's package of that name", async () => {
    const ws = workspace()
    symlinkSync(join(import.meta.dirname, "..", "node_modules"), join(ws.dir, "node_modules"))
    writePlugin(ws.root, {
      id: "shadows",
      files: {
        "index.js": `import { Effect } from "effect"\nexport default Effect\n`,
        "node_modules/effect/package.json": pkg({ name: "effect", type: "module", exports: { ".": "./index.js" } }),
        "node_modules/effect/index.js": `export const Effect = "the plugin's own"\n`,
      },
    })
    await lockNow(ws.root, ws.lock)
    expect((await loaded(ws.root, ws.lock))["shadows"]!.default).toBe("the plugin's own")
  })

  it("the examples load in-process, each a plugin definition", async () => {
    const examples = join(import.meta.dirname, "..", "examples", "plugins")
    const plugins = await loaded(examples, join(import.meta.dirname, "..", "PLUGINS.lock"))
    expect(Object.keys(plugins).sort()).toEqual(["case-tools", "greeter", "showcase", "text-tools", "vault-demo", "word-count"])
    for (const plugin of Object.values(plugins)) expect(isPluginDefinition(plugin.default)).toBe(true)
  })

  it("a plugin changed and locked again loads its new bytes: no stale module from the first load", async () => {
    const ws = workspace()
    writePlugin(ws.root, { id: "evolves", files: { "index.js": `export { v as default } from "./lib/v.js"\n`, "lib/v.js": `export const v = 1\n` } })
    await lockNow(ws.root, ws.lock)
    expect((await loaded(ws.root, ws.lock))["evolves"]!.default).toBe(1)
    writeFile(join(ws.root, "evolves", "lib/v.js"), `export const v = 2\n`)
    await lockNow(ws.root, ws.lock)
    expect((await loaded(ws.root, ws.lock))["evolves"]!.default).toBe(2)
  })
})

describe("in-process loading: what a plugin cannot import", () => {
  it("a file outside its folder, by a relative or an absolute path", async () => {
    const ws = workspace()
    writeFile(join(ws.dir, "outside.js"), `export default "outside"\n`)
    writePlugin(ws.root, { id: "escapes", files: { "index.js": `import "../../outside.js"\n` } })
    await lockNow(ws.root, ws.lock)
    expect(await importFailure(ws.root, ws.lock)).toContain("is outside plugin 'escapes'")
    writePlugin(ws.root, { id: "escapes", files: { "index.js": `import ${JSON.stringify(join(ws.dir, "outside.js"))}\n` } })
    await lockNow(ws.root, ws.lock)
    expect(await importFailure(ws.root, ws.lock)).toContain("is outside plugin 'escapes'")
  })

  it("a file that is not one of its verified files", async () => {
    const ws = workspace()
    writePlugin(ws.root, { id: "missing", files: { "index.js": `import "./lib/absent.js"\n` } })
    await lockNow(ws.root, ws.lock)
    expect(await importFailure(ws.root, ws.lock)).toContain("'lib/absent.js' is not a verified file of plugin 'missing'")
  })

  it("CommonJS, whose require would read the disk past the hooks: refused with a message that says so", async () => {
    const ws = workspace()
    writePlugin(ws.root, { id: "cjs", files: { "index.js": `import x from "./lib/x.cjs"\nexport default x\n`, "lib/x.cjs": `module.exports = require("./y.cjs")\n`, "lib/y.cjs": `module.exports = 1\n` } })
    await lockNow(ws.root, ws.lock)
    const cjs = await importFailure(ws.root, ws.lock)
    expect(cjs).toContain("'lib/x.cjs' of plugin 'cjs' is CommonJS")
    expect(cjs).toContain("in-process plugins load ES modules and JSON only")
    const typed = workspace()
    writePlugin(typed.root, {
      id: "typed",
      files: { "index.js": `import x from "dep"\nexport default x\n`, "node_modules/dep/package.json": pkg({ name: "dep", type: "commonjs", main: "index.js" }), "node_modules/dep/index.js": `module.exports = 1\n` },
    })
    await lockNow(typed.root, typed.lock)
    expect(await importFailure(typed.root, typed.lock)).toContain(`says "type": "commonjs"`)
  })

  it("a package path its exports do not offer", async () => {
    const ws = workspace()
    writePlugin(ws.root, {
      id: "sealed",
      files: { "index.js": `import "dep/internal.js"\n`, "node_modules/dep/package.json": pkg({ name: "dep", type: "module", exports: "./index.js" }), "node_modules/dep/index.js": "", "node_modules/dep/internal.js": "" },
    })
    await lockNow(ws.root, ws.lock)
    expect(await importFailure(ws.root, ws.lock)).toContain("'dep/internal.js' is not exported")
  })
})

describe("in-process loading: a swap after verification", () => {
  it("is caught when the bytes are read, before any plugin's module body runs", async () => {
    const ws = workspace()
    writePlugin(ws.root, { id: "a-swapped", files: { "index.js": witnessModule(ws.witnesses, "a-swapped") } })
    writePlugin(ws.root, { id: "b-intact", files: { "index.js": witnessModule(ws.witnesses, "b-intact") } })
    await lockNow(ws.root, ws.lock)
    // The swap lands after every plugin verified (the registry's duplicate check runs in between), as a racing writer's would.
    const swapAfterVerification = Layer.effect(
      Registry,
      Effect.map(makeRegistry, (registry) => ({
        ...registry,
        has: (id: string) =>
          Effect.sync(() => writeFile(join(ws.root, "a-swapped", "index.js"), witnessModule(ws.witnesses, "evil"))).pipe(
            Effect.zipRight(registry.has(id)),
          ),
      })),
    )
    const outcome = await Effect.runPromise(
      Effect.either(loadPlugins({ root: ws.root, lock: ws.lock })).pipe(Effect.provide(swapAfterVerification), Effect.provide(PlinthLive)),
    )
    if (Either.isRight(outcome)) throw new Error("expected the load to be rejected")
    expect(outcome.left._tag).toBe("IntegrityMismatch")
    expect(outcome.left._tag === "IntegrityMismatch" && outcome.left.changed).toEqual(["index.js"])
    expect(readdirSync(ws.witnesses)).toEqual([])
  })
})
