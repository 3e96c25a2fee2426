import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { describeLocalPlugin, PlinthLive, PluginNotFound } from "@plinth/runtime"

const examples = join(import.meta.dirname, "../../../examples/plugins")

const copyOfExamples = () => {
  const root = join(mkdtempSync(join(tmpdir(), "plinth-describe-")), "plugins")
  cpSync(examples, root, { recursive: true })
  return root
}

describe("describeLocalPlugin", () => {
  it.effect("reports a manifest generated from the same Schemas as up to date and writes nothing", () =>
    Effect.gen(function* () {
      const root = copyOfExamples()
      const before = readFileSync(join(root, "showcase", "plugin.json"), "utf8")
      const outcome = yield* describeLocalPlugin({ root, id: "showcase", write: true })
      expect(outcome.upToDate).toBe(true)
      expect(outcome.written).toBe(false)
      expect(Object.keys(outcome.declaration.actions).sort()).toEqual(["count", "fail", "greet", "probe", "slow"])
      expect(outcome.declaration.actions.count?.streaming).toBe(true)
      expect(readFileSync(join(root, "showcase", "plugin.json"), "utf8")).toBe(before)
    }).pipe(Effect.provide(PlinthLive)),
  )

  it.effect("rewrites only actions and config of a stale manifest, keeping its other fields and their order", () =>
    Effect.gen(function* () {
      const root = copyOfExamples()
      const file = join(root, "showcase", "plugin.json")
      const manifest = JSON.parse(readFileSync(file, "utf8"))
      const stale = { ...manifest, actions: { greet: manifest.actions.greet }, config: {} }
      writeFileSync(file, JSON.stringify(stale, null, 2))
      const outcome = yield* describeLocalPlugin({ root, id: "showcase", write: true })
      expect(outcome).toMatchObject({ upToDate: false, written: true })
      const rewritten = JSON.parse(readFileSync(file, "utf8"))
      expect(Object.keys(rewritten)).toEqual(Object.keys(manifest))
      expect(rewritten).toEqual(manifest)
    }).pipe(Effect.provide(PlinthLive)),
  )

  it.effect("an id that is not a folder under the root is PluginNotFound, and nothing runs", () =>
    Effect.gen(function* () {
      const root = copyOfExamples()
      for (const id of ["missing", "../plugins/showcase"]) {
        const error = yield* Effect.flip(describeLocalPlugin({ root, id, write: false }))
        expect(error).toBeInstanceOf(PluginNotFound)
      }
    }).pipe(Effect.provide(PlinthLive)),
  )
})
