import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { compareBytewise, diffFileMaps, isEmptyDiff, jsonNestingDepth, relativePathProblem } from "@plinth/domain"

const fileMap = fc.dictionary(fc.stringMatching(/^[a-c]{1,3}(\/[a-c]{1,2})?$/), fc.constantFrom("1", "2", "3"), { maxKeys: 8 })

describe("diffFileMaps", () => {
  it("names exactly the added, removed and changed paths, each once and sorted", () => {
    fc.assert(
      fc.property(fileMap, fileMap, (expected, actual) => {
        const d = diffFileMaps(expected, actual)
        const all = [...d.added, ...d.removed, ...d.changed]
        expect(new Set(all).size).toBe(all.length)
        for (const p of d.added) expect(p in expected || !(p in actual)).toBe(false)
        for (const p of d.removed) expect(p in expected && !(p in actual)).toBe(true)
        for (const p of d.changed) expect(expected[p]).not.toBe(actual[p])
        for (const p of Object.keys(actual)) if (p in expected && expected[p] !== actual[p]) expect(d.changed).toContain(p)
        for (const list of [d.added, d.removed, d.changed]) expect([...list].sort(compareBytewise)).toEqual(list)
        expect(isEmptyDiff(d)).toBe(JSON.stringify(Object.entries(expected).sort()) === JSON.stringify(Object.entries(actual).sort()))
      }),
    )
  })
})

describe("relative path rules", () => {
  it.each([
    ["index.js", undefined],
    ["lib/with space/ünï.mjs", undefined],
    ["../x.js", "the path leaves the plugin folder ('..')"],
    ["/etc/passwd", "the path is absolute"],
    ["a//b", "the path has an empty or '.' segment"],
    ["a/./b", "the path has an empty or '.' segment"],
    ["a\nb", "the path contains a newline or NUL character"],
    ["a\\b", "the path contains a backslash"],
    ["", "the path is empty"],
  ])("%j -> %s", (path, problem) => {
    expect(relativePathProblem(path)).toBe(problem)
  })
})

describe("bytewise order", () => {
  it("orders by UTF-8 bytes, as LC_ALL=C sort does, not by UTF-16 code units", () => {
    // U+FF61 is one UTF-16 unit but sorts after the surrogate pair of U+1F642 in UTF-16; in UTF-8 it sorts before.
    expect(["🙂", "｡"].sort(compareBytewise)).toEqual(["｡", "🙂"])
    expect(["b", "B", "a.js", "a-b", "a"].sort(compareBytewise)).toEqual(["B", "a", "a-b", "a.js", "b"])
  })

  it("agrees with Buffer.compare on arbitrary strings", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme" }), fc.string({ unit: "grapheme" }), (a, b) => {
        expect(Math.sign(compareBytewise(a, b))).toBe(Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b))))
      }),
    )
  })
})

describe("jsonNestingDepth", () => {
  it("counts nesting and ignores brackets inside strings", () => {
    expect(jsonNestingDepth('{"a":[1,{"b":"[[[["}]}')).toBe(3)
    expect(jsonNestingDepth('"\\"["')).toBe(0)
    expect(jsonNestingDepth("[".repeat(50) + "]".repeat(50))).toBe(50)
  })
})
