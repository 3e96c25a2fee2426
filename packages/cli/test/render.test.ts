import { Console as NodeConsole } from "node:console"
import { PassThrough } from "node:stream"
import { Console, Effect, Option } from "effect"
import { describe, expect, it } from "vitest"
import { IntegrityMismatch, UnlockedPlugin, type Digest, type PluginId, type PluginManifest } from "@plinth/domain"
import type { PluginSummary } from "@plinth/runtime"
import {
  ansiPalette,
  colourEnabled,
  plainConsole,
  printable,
  rejectionJson,
  renderPluginDetail,
  renderPluginList,
  renderRejection,
} from "@plinth/cli"

const digest = (c: string) => `h1:${c.repeat(43)}=` as Digest

const mismatch = new IntegrityMismatch({
  plugin: "alpha",
  expected: digest("A"),
  actual: digest("B"),
  added: ["new.js"],
  removed: [],
  changed: ["lib/util.js", "index.js"],
})

const summary = (manifest: Partial<PluginManifest>, locked: boolean): PluginSummary => ({
  id: "alpha",
  dir: "plugins/alpha",
  manifest: { id: "alpha" as PluginId, version: "1.0.0", description: "Alpha.", entry: "index.js", ...manifest },
  lockedDigest: locked ? Option.some(digest("C")) : Option.none(),
  lockedFiles: locked ? 2 : 0,
})

describe("rendering rejections", () => {
  it("names the rule, the plugin and the files that changed", () => {
    const text = renderRejection(mismatch)
    expect(text).toContain("[IntegrityMismatch]")
    expect(text).toContain("'alpha'")
    expect(text).toContain("added: new.js")
    expect(text).toContain("changed: lib/util.js, index.js")
  })

  it("--json carries every field of the variant under its tag", () => {
    expect(rejectionJson(mismatch)).toEqual({
      ok: false,
      rejection: { _tag: "IntegrityMismatch", plugin: "alpha", expected: digest("A"), actual: digest("B"), added: ["new.js"], removed: [], changed: ["lib/util.js", "index.js"] },
    })
    expect(JSON.parse(JSON.stringify(rejectionJson(new UnlockedPlugin({ plugin: "beta" }))))).toEqual({
      ok: false,
      rejection: { _tag: "UnlockedPlugin", plugin: "beta" },
    })
  })
})

describe("rendering plugins", () => {
  it("show lists actions with their schemas, the config schema and the lock status", () => {
    const text = renderPluginDetail(
      summary(
        {
          actions: { greet: { description: "Says hello.", input: { type: "object" }, output: { type: "string" } } },
          config: { type: "object", properties: { loud: { type: "boolean" } } },
        },
        true,
      ),
    )
    expect(text).toMatch(/greet: Says hello\.\n {4}input:\n {6}\{\n {8}"type": "object"/)
    expect(text).toMatch(/config:\n {2}\{[\s\S]*"loud"/)
    expect(text).toContain(`locked ${digest("C")} (2 files)`)
    expect(renderPluginDetail(summary({}, false))).toMatch(/not locked[\s\S]*actions: none declared/)
  })

  it("text from a plugin cannot send escape sequences to the terminal", () => {
    const hostile = summary({ description: "innocent\u001b]0;pwned\u0007\u001b[2J", version: "1.0.0" }, false)
    for (const text of [renderPluginList([hostile]), renderPluginDetail(hostile)]) {
      expect(text).not.toContain("\u001b")
      expect(text).toContain("\\u001b]0;pwned")
    }
    expect(printable("a\nb\tc\u009b")).toBe("a\nb\tc\\u009b")
  })
})

describe("colour", () => {
  it("is on only for a terminal without a non-empty NO_COLOR", () => {
    expect(colourEnabled({ noColor: undefined, isTTY: true })).toBe(true)
    expect(colourEnabled({ noColor: "", isTTY: true })).toBe(true)
    expect(colourEnabled({ noColor: "1", isTTY: true })).toBe(false)
    expect(colourEnabled({ noColor: undefined, isTTY: false })).toBe(false)
  })

  it("the console strips escape sequences from each stream without colour, and only there", async () => {
    const out = new PassThrough()
    const err = new PassThrough()
    const base = new NodeConsole({ stdout: out, stderr: err })
    const coloured = ansiPalette.bad("red")
    const console = plainConsole(base, { stdout: true, stderr: false })
    await Effect.runPromise(Effect.all([Console.log(coloured), Console.error(coloured)]).pipe(Effect.withConsole(console)))
    expect(String(out.read())).toBe(`${coloured}\n`)
    expect(String(err.read())).toBe("red\n")
  })
})
