import { existsSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer } from "effect"
import { exitCodeFor, explainRejection, type PluginRejected } from "@plinth/domain"
import {
  discoverAndVerify,
  DuplicatePlugin,
  loadPlugins,
  PlinthLive,
  PluginVerifier,
  Registry,
  TreeDigestVerifierLive,
} from "@plinth/runtime"
import { lockNow, witnessModule, workspace, writeFile, writePlugin } from "./support/plugins.js"

/** Loads into a fresh registry and returns the outcome with what the registry holds afterwards. */
const loadInto = (root: string, lock: string, layer: Layer.Layer<any> = PlinthLive) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const outcome = yield* Effect.either(loadPlugins({ root, lock }))
      const registered = yield* Effect.flatMap(Registry, (r) => r.list)
      return { outcome, registered: registered.map((p) => p.id) }
    }).pipe(Effect.provide(layer as typeof PlinthLive)),
  )

const rejectionOf = (outcome: Either.Either<unknown, PluginRejected | DuplicatePlugin>) => {
  if (Either.isRight(outcome)) throw new Error("expected the load to be rejected, but it succeeded")
  const left = outcome.left
  if (left._tag === "DuplicatePlugin") throw new Error("expected a plugin rejection, got DuplicatePlugin")
  return left
}

/** The plugins whose module bodies ran. */
const witnessed = (ws: { readonly witnesses: string }) => readdirSync(ws.witnesses)

describe("loadPlugins: the happy path", () => {
  it("loads every verified plugin in discovery order and registers them", async () => {
    const ws = workspace()
    for (const id of ["zeta", "alpha", "mid-dle"]) writePlugin(ws.root, { id, files: { "index.js": witnessModule(ws.witnesses, id) } })
    await lockNow(ws.root, ws.lock)
    const { outcome, registered } = await loadInto(ws.root, ws.lock)
    expect(Either.getOrThrow(outcome)).toEqual({ loaded: ["alpha", "mid-dle", "zeta"], totalWalked: 3 })
    expect(registered).toEqual(["alpha", "mid-dle", "zeta"])
    expect(witnessed(ws).sort()).toEqual(["alpha", "mid-dle", "zeta"])
  })

  it("accepts an empty lock with no plugins", async () => {
    const ws = workspace()
    writeFileSync(ws.lock, JSON.stringify({ lockVersion: 1, plugins: {} }))
    const { outcome, registered } = await loadInto(ws.root, ws.lock)
    expect(Either.getOrThrow(outcome)).toEqual({ loaded: [], totalWalked: 0 })
    expect(registered).toEqual([])
  })

  it("refuses to load the same plugins twice into one registry, before any module body runs again", async () => {
    const ws = workspace()
    writePlugin(ws.root, { id: "once" })
    await lockNow(ws.root, ws.lock)
    const twice = await Effect.runPromise(
      Effect.gen(function* () {
        yield* loadPlugins({ root: ws.root, lock: ws.lock })
        return yield* Effect.flip(loadPlugins({ root: ws.root, lock: ws.lock }))
      }).pipe(Effect.provide(PlinthLive)),
    )
    expect(twice).toBeInstanceOf(DuplicatePlugin)
    expect(twice._tag === "DuplicatePlugin" && twice.plugin).toBe("once")
  })
})

describe("loadPlugins: one named test per rejection variant", () => {
  const expectRejected = async (
    ws: ReturnType<typeof workspace>,
    tag: PluginRejected["_tag"],
    plugin: string | undefined,
  ) => {
    const { outcome, registered } = await loadInto(ws.root, ws.lock)
    const rejection = rejectionOf(outcome)
    expect(rejection._tag).toBe(tag)
    if (plugin !== undefined) expect("plugin" in rejection ? rejection.plugin : undefined).toBe(plugin)
    expect(exitCodeFor(rejection)).toBe(4)
    expect(registered).toEqual([])
    expect(witnessed(ws)).toEqual([])
    return rejection
  }

  it("IntegrityMismatch: a changed, an added and a removed file are each named", async () => {
    const ws = workspace()
    writePlugin(ws.root, {
      id: "tampered",
      files: { "index.js": witnessModule(ws.witnesses, "tampered"), "lib/a.js": "export const a = 1\n", "lib/b.js": "export const b = 2\n" },
    })
    await lockNow(ws.root, ws.lock)
    writeFile(join(ws.root, "tampered", "lib/a.js"), "export const a = 2\n")
    writeFile(join(ws.root, "tampered", "lib/new.js"), "export const n = 3\n")
    rmSync(join(ws.root, "tampered", "lib/b.js"))
    const rejection = await expectRejected(ws, "IntegrityMismatch", "tampered")
    if (rejection._tag !== "IntegrityMismatch") throw new Error("unreachable")
    expect(rejection.changed).toEqual(["lib/a.js"])
    expect(rejection.added).toEqual(["lib/new.js"])
    expect(rejection.removed).toEqual(["lib/b.js"])
    expect(rejection.expected).not.toBe(rejection.actual)
  })

  it("MissingManifest: a plugin folder without plugin.json", async () => {
    const ws = workspace()
    writePlugin(ws.root, { id: "fine", files: { "index.js": witnessModule(ws.witnesses, "fine") } })
    await lockNow(ws.root, ws.lock)
    writeFile(join(ws.root, "bare", "index.js"), witnessModule(ws.witnesses, "bare"))
    await expectRejected(ws, "MissingManifest", "bare")
  })

  it("SchemaViolation: an unknown top-level key, an escaping entry, an id that is not the folder name", async () => {
    for (const manifest of [{ extra: true }, { entry: "../outside.js" }, { id: "other-name" }, { version: "one" }]) {
      const ws = workspace()
      writePlugin(ws.root, { id: "bad", files: { "index.js": witnessModule(ws.witnesses, "bad") } })
      await lockNow(ws.root, ws.lock)
      writePlugin(ws.root, { id: "bad", manifest, files: { "index.js": witnessModule(ws.witnesses, "bad") } })
      const rejection = await expectRejected(ws, "SchemaViolation", "bad")
      expect(rejection._tag === "SchemaViolation" && rejection.detail.length).toBeGreaterThan(0)
    }
  })

  it("UnlockedPlugin: a plugin folder the lock does not pin", async () => {
    const ws = workspace()
    writePlugin(ws.root, { id: "pinned", files: { "index.js": witnessModule(ws.witnesses, "pinned") } })
    await lockNow(ws.root, ws.lock)
    writePlugin(ws.root, { id: "newcomer", files: { "index.js": witnessModule(ws.witnesses, "newcomer") } })
    await expectRejected(ws, "UnlockedPlugin", "newcomer")
  })

  it("MissingPluginDirectory: the lock pins a plugin whose folder is gone", async () => {
    const ws = workspace()
    writePlugin(ws.root, { id: "stays", files: { "index.js": witnessModule(ws.witnesses, "stays") } })
    writePlugin(ws.root, { id: "goes" })
    await lockNow(ws.root, ws.lock)
    rmSync(join(ws.root, "goes"), { recursive: true })
    await expectRejected(ws, "MissingPluginDirectory", "goes")
  })

  it("PluginImportError: a verified plugin whose module throws; the registry stays empty", async () => {
    const ws = workspace()
    writePlugin(ws.root, { id: "a-good", files: { "index.js": witnessModule(ws.witnesses, "a-good") } })
    writePlugin(ws.root, { id: "b-broken", files: { "index.js": 'throw new Error("boom at import")\n' } })
    await lockNow(ws.root, ws.lock)
    const { outcome, registered } = await loadInto(ws.root, ws.lock)
    const rejection = rejectionOf(outcome)
    expect(rejection._tag).toBe("PluginImportError")
    expect(rejection._tag === "PluginImportError" && rejection.plugin).toBe("b-broken")
    expect(rejection._tag === "PluginImportError" && rejection.detail).toContain("boom at import")
    expect(exitCodeFor(rejection)).toBe(4)
    // Imports happen only after every plugin verified; a failing import still registers nothing.
    expect(registered).toEqual([])
  })

  it("SymlinkEscape: a symlink that resolves outside the plugin folder", async () => {
    const ws = workspace()
    writePlugin(ws.root, { id: "linky", files: { "index.js": witnessModule(ws.witnesses, "linky") } })
    await lockNow(ws.root, ws.lock)
    writeFile(join(ws.dir, "secret.txt"), "outside\n")
    symlinkSync(join(ws.dir, "secret.txt"), join(ws.root, "linky", "escape.txt"))
    const rejection = await expectRejected(ws, "SymlinkEscape", "linky")
    expect(rejection._tag === "SymlinkEscape" && rejection.offendingPath).toBe("escape.txt")
  })

  it("LockFileMalformed: not JSON, the wrong shape, too deep", async () => {
    const deep = "[".repeat(10_000) + "]".repeat(10_000)
    for (const text of ["{not json", "[]", "null", JSON.stringify({ lockVersion: 2, plugins: {} }), deep]) {
      const ws = workspace()
      writePlugin(ws.root, { id: "any", files: { "index.js": witnessModule(ws.witnesses, "any") } })
      writeFileSync(ws.lock, text)
      const rejection = await expectRejected(ws, "LockFileMalformed", undefined)
      expect(rejection._tag === "LockFileMalformed" && rejection.path).toBe(ws.lock)
    }
  })

  it("LockFileMissing: no lock file at all, explained with the command that creates one", async () => {
    const ws = workspace()
    writePlugin(ws.root, { id: "any", files: { "index.js": witnessModule(ws.witnesses, "any") } })
    const rejection = await expectRejected(ws, "LockFileMissing", undefined)
    expect(rejection._tag === "LockFileMissing" && rejection.path).toBe(ws.lock)
    expect(explainRejection(rejection)).toBe(`no lock file at ${ws.lock}; create one with: plinth plugins lock --root ${ws.root} --lock ${ws.lock}`)
  })
})

describe("verify all, then import all", () => {
  it("a tampered plugin's module body never runs", async () => {
    const ws = workspace()
    writePlugin(ws.root, { id: "victim", files: { "index.js": witnessModule(ws.witnesses, "victim") } })
    await lockNow(ws.root, ws.lock)
    writeFile(join(ws.root, "victim", "index.js"), witnessModule(ws.witnesses, "victim") + "// tampered\n")
    const { outcome, registered } = await loadInto(ws.root, ws.lock)
    expect(rejectionOf(outcome)._tag).toBe("IntegrityMismatch")
    expect(registered).toEqual([])
    expect(existsSync(join(ws.witnesses, "victim"))).toBe(false)
  })

  it("a tampered plugin later in discovery order stops every earlier, intact plugin from running", async () => {
    const ws = workspace()
    for (const id of ["a-first", "b-second", "z-last"]) writePlugin(ws.root, { id, files: { "index.js": witnessModule(ws.witnesses, id) } })
    await lockNow(ws.root, ws.lock)
    writeFile(join(ws.root, "z-last", "extra.js"), "export {}\n")
    const { outcome, registered } = await loadInto(ws.root, ws.lock)
    const rejection = rejectionOf(outcome)
    expect(rejection._tag === "IntegrityMismatch" && rejection.plugin).toBe("z-last")
    expect(registered).toEqual([])
    expect(witnessed(ws)).toEqual([])
  })

  it("discoverAndVerify never imports, even when everything verifies", async () => {
    const ws = workspace()
    writePlugin(ws.root, { id: "quiet", files: { "index.js": witnessModule(ws.witnesses, "quiet") } })
    await lockNow(ws.root, ws.lock)
    const verified = await Effect.runPromise(discoverAndVerify({ root: ws.root, lock: ws.lock }).pipe(Effect.provide(PlinthLive)))
    expect(verified.discovered.map((p) => p.id)).toEqual(["quiet"])
    expect(witnessed(ws)).toEqual([])
  })
})

describe("the verifier is a seam", () => {
  it("a substitute verifier is used without any change to the loader", async () => {
    const ws = workspace()
    writePlugin(ws.root, { id: "trusted", files: { "index.js": witnessModule(ws.witnesses, "trusted") } })
    await lockNow(ws.root, ws.lock)
    writeFile(join(ws.root, "trusted", "note.txt"), "changed after locking\n")
    const seen: Array<string> = []
    const approveAll = Layer.succeed(PluginVerifier, {
      verify: (plugin) => Effect.sync(() => void seen.push(`verify ${plugin.id}`)),
      verifyFiles: (plugin) => Effect.sync(() => void seen.push(`verifyFiles ${plugin.id}`)),
    })
    const { outcome } = await loadInto(ws.root, ws.lock, Layer.merge(PlinthLive, approveAll))
    expect(Either.getOrThrow(outcome).loaded).toEqual(["trusted"])
    // Verify-all checks the folder; the in-process loader then checks the very bytes it imports, through the same seam.
    expect(seen).toEqual(["verify trusted", "verifyFiles trusted"])
    // The default verifier refuses the same tree.
    const strict = await loadInto(ws.root, ws.lock, Layer.merge(PlinthLive, TreeDigestVerifierLive.pipe(Layer.provide(PlinthLive))))
    expect(rejectionOf(strict.outcome)._tag).toBe("IntegrityMismatch")
  })
})
