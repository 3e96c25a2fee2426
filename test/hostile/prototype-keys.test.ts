import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import fc from "fast-check"
import { Effect, Either } from "effect"
import type { LockFile, PluginId } from "@plinth/domain"
import { discoverAndVerify, loadPlugins, LockStore, PlinthLive, readVerifiedFiles } from "@plinth/runtime"
import { buildCli, plinth } from "../support/cli.js"
import { lockNow, workspace, writeFile, writePlugin } from "../support/plugins.js"

/*
 * Names that are Object.prototype keys are ordinary names: as a plugin id (a
 * folder name), as file names, and as JSON keys in the lock and the manifest.
 * A dictionary built on `{}` drops `__proto__` and finds `toString` where
 * there is none; every path from disk to a running plugin must not.
 */

const prototypeNames = ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf", "isPrototypeOf", "propertyIsEnumerable", "__defineGetter__"]

/** File paths made of prototype names, at the top and in sub-folders. */
const prototypePaths = fc
  .uniqueArray(
    fc.tuple(fc.constantFrom(undefined, "lib", "constructor", "__proto__"), fc.constantFrom(...prototypeNames)).map(([dir, name]) => (dir === undefined ? name : `${dir}/${name}`)),
    { minLength: 1, maxLength: 6 },
  )
  // A file cannot also be a folder of another file.
  .filter((paths) => paths.every((p) => !paths.some((q) => q.startsWith(p + "/"))))

const run = <A, E>(effect: Effect.Effect<A, E, any>) => Effect.runPromise(Effect.either(effect).pipe(Effect.provide(PlinthLive)) as Effect.Effect<Either.Either<A, E>>)

describe("Object.prototype keys as names, through real files and the loader", () => {
  it("lock, load, verified bytes and tamper evidence all see every such file", async () => {
    await fc.assert(
      fc.asyncProperty(prototypePaths, fc.constantFrom("constructor", "plain"), async (paths, id) => {
        const ws = workspace()
        const files = Object.fromEntries([["index.js", "export default {}\n"], ...paths.map((p, i) => [p, `content ${i} of ${p}\n`])])
        writePlugin(ws.root, { id, files })
        await lockNow(ws.root, ws.lock)

        // The lock on disk pins every file, and reads back with every file.
        const lock = Either.getOrThrow(await run(Effect.flatMap(LockStore, (store) => store.read(ws.lock)))) as LockFile
        const entry = lock.plugins[id as PluginId]!
        expect(Object.keys(lock.plugins)).toEqual([id])
        expect(Object.keys(entry.files).sort()).toEqual([...paths, "index.js", "plugin.json"].sort())
        expect(Object.keys(JSON.parse(readFileSync(ws.lock, "utf8")).plugins[id].files).length).toBe(paths.length + 2)

        // The loader verifies and loads it.
        expect(Either.getOrThrow(await run(loadPlugins({ root: ws.root, lock: ws.lock }))).loaded).toEqual([id])

        // A worker's in-memory files hold every file, with its bytes.
        const verified = Either.getOrThrow(await run(readVerifiedFiles({ id, dir: join(ws.root, id) }, entry)))
        for (const p of paths) expect(Buffer.from(verified.find((f) => f.path === p)!.bytes).toString()).toBe(files[p])

        // Changing one of those files is caught and named.
        const victim = paths[paths.length - 1]!
        writeFileSync(join(ws.root, id, victim), "tampered\n")
        const refused = await run(discoverAndVerify({ root: ws.root, lock: ws.lock }))
        expect(Either.getLeft(refused)).toMatchObject({ _tag: "Some", value: { _tag: "IntegrityMismatch", plugin: id, changed: [victim], added: [], removed: [] } })
      }),
      { numRuns: 20 },
    )
  })
})

describe("Object.prototype keys through the CLI", () => {
  beforeAll(() => buildCli())

  it("a plugin folder named constructor with actions and files named like prototype keys: lock, verify, list, show, describe, invoke", async () => {
    const ws = workspace()
    const source = [
      'import { Effect, Schema } from "effect"',
      'import { definePlugin } from "@plinth/domain"',
      "export default definePlugin({",
      "  config: Schema.Struct({}),",
      "  actions: ({ action }) => ({",
      '    constructor: action({ description: "c", input: Schema.Struct({ n: Schema.Number }), output: Schema.Number, handler: ({ n }) => Effect.succeed(n + 1) }),',
      '    toString: action({ description: "t", input: Schema.Struct({}), output: Schema.String, handler: () => Effect.succeed("own") }),',
      "  }),",
      "})",
      "",
    ].join("\n")
    const cwd = ws.dir
    // A lock that pins nothing: a plugin named constructor is not in it, whatever Object.prototype holds.
    expect((await plinth(cwd, ["plugins", "lock"])).code).toBe(0)
    writePlugin(ws.root, { id: "constructor", files: { "index.js": source, ["__proto__"]: "p\n", "lib/valueOf": "v\n", "hasOwnProperty": "h\n" } })
    const unlocked = await plinth(cwd, ["plugins", "list", "--json"])
    expect(JSON.parse(unlocked.stdout).plugins[0]).toMatchObject({ id: "constructor", lock: { locked: false } })
    const refused = await plinth(cwd, ["plugins", "verify"])
    expect(refused.code).toBe(4)
    expect(refused.stderr).toContain("UnlockedPlugin")
    const described = await plinth(cwd, ["plugins", "describe", "constructor", "--write"])
    expect(described.code, described.stderr).toBe(0)
    expect(Object.keys(JSON.parse(readFileSync(join(ws.root, "constructor", "plugin.json"), "utf8")).actions)).toEqual(["constructor", "toString"])

    expect((await plinth(cwd, ["plugins", "lock"])).code).toBe(0)
    expect(Object.keys(JSON.parse(readFileSync(join(cwd, "PLUGINS.lock"), "utf8")).plugins.constructor.files)).toContain("__proto__")
    const verified = await plinth(cwd, ["plugins", "verify", "--json"])
    expect(verified.code, verified.stdout + verified.stderr).toBe(0)
    const listed = await plinth(cwd, ["plugins", "list", "--json"])
    expect(listed.code).toBe(0)
    expect(listed.stdout).toContain('"constructor"')
    const shown = await plinth(cwd, ["plugins", "show", "constructor", "--json"])
    expect(shown.code, shown.stderr).toBe(0)
    expect(shown.stdout).toContain('"toString"')

    const called = await plinth(cwd, ["plugins", "invoke", "constructor", "constructor", "--input", '{"n": 41}', "--json"])
    expect(called.code, called.stderr).toBe(0)
    expect(called.stdout).toContain("42")
    const own = await plinth(cwd, ["plugins", "invoke", "constructor", "toString", "--input", "{}", "--json"])
    expect(own.code, own.stderr).toBe(0)
    expect(own.stdout).toContain('"own"')
    // Names that are only inherited are not actions.
    for (const inherited of ["valueOf", "hasOwnProperty", "__proto__"]) {
      const missing = await plinth(cwd, ["plugins", "invoke", "constructor", inherited, "--input", "{}", "--json"])
      expect(missing.code, `${inherited}: ${missing.stdout}${missing.stderr}`).toBe(5)
      expect(missing.stdout).toContain("ActionNotFound")
    }

    // Tampering with the file named __proto__ is caught and named.
    writeFile(join(ws.root, "constructor", "__proto__"), "tampered\n")
    const tampered = await plinth(cwd, ["plugins", "verify", "--json"])
    expect(tampered.code).toBe(4)
    expect(JSON.parse(tampered.stdout)).toMatchObject({ ok: false })
    expect(JSON.stringify(JSON.parse(tampered.stdout))).toContain('"changed":["__proto__"]')
  }, 60_000)
})
