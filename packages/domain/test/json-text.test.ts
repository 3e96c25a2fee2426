import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { Either } from "effect"
import { decodeLockFile, decodeManifest, encodeLockFile, parseJsonText, type LockFile } from "@plinth/domain"

const caps = { maxChars: 1 << 24, maxDepth: 1000 }
const prototypeKeys = ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf", "isPrototypeOf", "__defineGetter__"] as const
const hex = (c: string) => c.repeat(64)

describe("parseJsonText", () => {
  it("gives the same value as JSON.parse for any JSON text without duplicate keys", () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom(undefined, 2), (value, indent) => {
        const text = JSON.stringify(value, null, indent)
        expect(parseJsonText(text, caps)).toEqual(Either.right(JSON.parse(text)))
      }),
      { numRuns: 300 },
    )
  })

  it("refuses a key given twice in one object, at any depth, naming the key and where it is", () => {
    const key = fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom(...prototypeKeys))
    fc.assert(
      fc.property(key, fc.array(fc.constantFrom("a", "b", "c"), { maxLength: 4 }), fc.jsonValue(), fc.jsonValue(), (dup, path, first, second) => {
        const inner = `{${JSON.stringify(dup)}: ${JSON.stringify(first)}, "other": 0, ${JSON.stringify(dup)}: ${JSON.stringify(second)}}`
        const text = path.reduceRight((acc, segment) => `{${JSON.stringify(segment)}: ${acc}}`, inner)
        const result = parseJsonText(text, caps)
        expect(Either.isLeft(result)).toBe(true)
        const problem = Either.getLeft(result).pipe((o) => (o._tag === "Some" ? o.value : undefined))
        expect(problem).toMatchObject({ _tag: "DuplicateKey", key: dup, path })
      }),
      { numRuns: 200 },
    )
  })

  it("compares keys after unescaping, and tells keys apart that only look alike", () => {
    expect(parseJsonText('{"a": 1, "\\u0061": 2}', caps)).toMatchObject({ _tag: "Left", left: { _tag: "DuplicateKey", key: "a" } })
    expect(parseJsonText('{"a": 1, "A": 2, "a ": 3}', caps)).toEqual(Either.right({ a: 1, A: 2, "a ": 3 }))
    // The same key in two sibling objects is not a duplicate.
    expect(parseJsonText('[{"a": 1}, {"a": 2}]', caps)).toEqual(Either.right([{ a: 1 }, { a: 2 }]))
  })

  it("keeps __proto__ an ordinary own key", () => {
    const value = Either.getOrThrow(parseJsonText('{"__proto__": {"polluted": true}}', caps)) as Record<string, unknown>
    expect(Object.hasOwn(value, "__proto__")).toBe(true)
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined()
  })

  it("refuses text over the depth cap before parsing it", () => {
    const deep = "[".repeat(5000) + "]".repeat(5000)
    expect(parseJsonText(deep, { maxChars: 1 << 20, maxDepth: 100 })).toEqual(Either.left({ _tag: "TooDeep", depth: 5000, maxDepth: 100 }))
  })
})

describe("prototype keys are ordinary keys in the lock and the manifest", () => {
  it("a lock whose plugin and file names are Object.prototype keys round-trips, and lookups find only own keys", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.constantFrom(...prototypeKeys, "index.js", "lib/x.js"), { minLength: 1 }), (names) => {
        const files = Object.fromEntries(names.map((n, i) => [n, hex(String(i % 10))]))
        const text = JSON.stringify({ lockVersion: 1, plugins: { constructor: { digest: "h1:" + "A".repeat(43) + "=", files } } })
        const lock = Either.getOrThrow(decodeLockFile(text))
        expect(Object.keys(lock.plugins)).toEqual(["constructor"])
        expect(Object.keys(lock.plugins["constructor" as keyof LockFile["plugins"]]!.files).sort()).toEqual([...names].sort())
        for (const key of prototypeKeys) if (key !== "constructor") expect(lock.plugins[key as keyof LockFile["plugins"]]).toBeUndefined()
        expect(decodeLockFile(encodeLockFile(lock))).toEqual(Either.right(lock))
        expect(JSON.parse(encodeLockFile(lock)).plugins.constructor.files).toEqual(files)
      }),
    )
  })

  it("a manifest keeps actions named like Object.prototype keys and __proto__ inside its JSON Schemas", () => {
    const schema = { type: "object", properties: { __proto__: { type: "string" }, constructor: { type: "number" } } }
    const actions = Object.fromEntries(["constructor", "toString", "valueOf", "hasOwnProperty"].map((n) => [n, { description: n, input: schema, output: {} }]))
    const text = JSON.stringify({ id: "constructor", version: "1.0.0", description: "", entry: "index.js", actions, config: { __proto__: { x: 1 } } })
    // JSON.stringify drops a literal __proto__ set through an object literal, so the text is written out by hand.
    const withProto = text.replaceAll('"properties":{', '"properties":{"__proto__":{"type":"string"},').replace('"config":{', '"config":{"__proto__":{"x":1}')
    const manifest = Either.getOrThrow(decodeManifest(withProto))
    expect(Object.keys(manifest.actions!).sort()).toEqual(["constructor", "hasOwnProperty", "toString", "valueOf"])
    expect(Object.keys((manifest.actions!["toString"]!.input as { properties: object }).properties)).toEqual(["__proto__", "constructor"])
    expect(Object.keys(manifest.config!)).toEqual(["__proto__"])
    expect(manifest.actions!["isPrototypeOf"]).toBeUndefined()
  })

  it("a duplicate key in plugin.json or PLUGINS.lock is a one-line refusal naming the key", () => {
    const text = '{"id": "a", "version": "1.0.0", "description": "", "entry": "index.js", "entry": "evil.js"}'
    const manifest = Either.getLeft(decodeManifest(text))
    const column = text.lastIndexOf('"entry"') + 1
    expect(manifest._tag === "Some" && manifest.value).toBe(`the key "entry" appears twice in the top-level object (line 1, column ${column}); keep one`)
    const lock = Either.getLeft(decodeLockFile(`{"lockVersion": 1, "plugins": {"a": {"digest": "h1:x", "files": {"index.js": "${hex("1")}", "index.js": "${hex("2")}"}}}}`))
    expect(lock._tag === "Some" && lock.value).toMatch(/^the key "index\.js" appears twice in the object at plugins\.a\.files \(line 1, column \d+\); keep one$/)
  })
})
