import { describe, expect, it } from "vitest"
import { Effect, Schema, Stream } from "effect"
import { declarationDifferences, declarationOf, definePlugin, definitionProblems, handlerResultProblem, streamResultProblem } from "../src/index.js"

/*
 * The rules a plugin definition keeps (DefinitionRules.ts), as a JavaScript
 * author can break them: each broken rule is found, named with its action,
 * and a sound definition breaks none.
 */

const sound = definePlugin({
  config: Schema.Struct({}),
  actions: ({ action, streaming }) => ({
    plain: action({ description: "p", input: Schema.Struct({}), output: Schema.String, handler: () => Effect.succeed("x") }),
    many: streaming({ description: "m", input: Schema.Struct({}), output: Schema.Number, stream: () => Stream.make(1) }),
  }),
})

/** A definition with one action replaced by `broken`, as untyped JavaScript could write it. */
const withAction = (broken: unknown) => ({ ...sound, actions: { ...sound.actions, broken } })
const rulesOf = (definition: unknown) => definitionProblems(definition).map((p) => [p.action, p.rule])

describe("definitionProblems", () => {
  it("a sound definition breaks no rule", () => {
    expect(definitionProblems(sound)).toEqual([])
  })

  it("names each broken rule with its action", () => {
    const base = { _kind: "unary", description: "d", input: Schema.String, output: Schema.String, handler: () => Effect.void }
    expect(rulesOf(withAction({ ...base, _kind: "streaming" }))).toEqual([["broken", "streaming-stream"]])
    expect(definitionProblems(withAction({ ...base, _kind: "streaming" }))[0]!.detail).toContain("not 'handler'")
    expect(rulesOf(withAction({ ...base, handler: undefined, stream: () => Stream.empty }))).toEqual([["broken", "unary-handler"]])
    expect(rulesOf(withAction({ ...base, input: undefined }))).toEqual([["broken", "input-schema"]])
    expect(rulesOf(withAction({ ...base, output: { type: "string" } }))).toEqual([["broken", "output-schema"]])
    expect(rulesOf(withAction({ ...base, description: 3 }))).toEqual([["broken", "description-text"]])
    expect(rulesOf(withAction(() => Effect.void))).toEqual([["broken", "action-shape"]])
    expect(rulesOf({ ...sound, config: { type: "object" } })).toEqual([[undefined, "config-schema"]])
    expect(rulesOf({ ...sound, setup: "later" })).toEqual([[undefined, "lifecycle-function"]])
    expect(rulesOf({ ...sound, actions: undefined })).toEqual([[undefined, "definition-shape"]])
  })

  it("an action named like an Object.prototype member is checked as itself", () => {
    expect(rulesOf({ ...sound, actions: { constructor: { _kind: "unary" } } }).map(([action]) => action)).toEqual([
      "constructor",
      "constructor",
      "constructor",
      "constructor",
    ])
  })
})

describe("what handlers return", () => {
  it("a handler must return an Effect; a Stream from a handler points to streaming({ stream })", () => {
    expect(handlerResultProblem("a", Effect.succeed(1))).toBeUndefined()
    expect(handlerResultProblem("a", Promise.resolve(1))?.detail).toContain("a Promise")
    expect(handlerResultProblem("a", 1)?.detail).toContain("a number (1)")
    expect(handlerResultProblem("a", Stream.make(1))?.detail).toContain("streaming({")
  })

  it("a stream function must return a Stream", () => {
    expect(streamResultProblem("s", Stream.make(1))).toBeUndefined()
    expect(streamResultProblem("s", Effect.succeed(1))).toMatchObject({ action: "s", rule: "stream-returns-stream" })
  })
})

describe("declarationDifferences", () => {
  it("is empty for the declaration itself and names added, removed, kind, schema and config changes", () => {
    const declared = declarationOf(sound)
    const manifest = { id: "p", version: "1.0.0", description: "", entry: "index.js", ...declared }
    expect(declarationDifferences(manifest as never, declared)).toEqual([])
    const changed = declarationOf(
      definePlugin({
        config: Schema.Struct({ n: Schema.Number }),
        actions: ({ action }) => ({
          plain: action({ description: "p", input: Schema.Struct({ x: Schema.String }), output: Schema.String, handler: () => Effect.succeed("x") }),
          many: action({ description: "m", input: Schema.Struct({}), output: Schema.Number, handler: () => Effect.succeed(1) }),
          extra: action({ description: "e", input: Schema.Struct({}), output: Schema.Number, handler: () => Effect.succeed(1) }),
        }),
      }),
    )
    expect(declarationDifferences({ ...manifest, actions: { ...declared.actions, gone: declared.actions["plain"]! } } as never, changed)).toEqual([
      { change: "added", action: "extra" },
      { change: "kind", action: "many" },
      { change: "input", action: "plain" },
      { change: "removed", action: "gone" },
      { change: "config" },
    ])
  })
})
