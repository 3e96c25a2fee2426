import { Effect, Predicate, Schema, Stream } from "effect"

/*
 * The rules a plugin definition must keep, checked where the worker loads a
 * plugin (so `describe` and every start find them) and, for what a handler
 * returns, at each call. Plugins are often plain JavaScript: the types of
 * `definePlugin` say all this, but nothing enforces it there. Each broken
 * rule is named, with the action, so an author knows what to change instead
 * of meeting a crashed worker.
 */

export const DefinitionRule = Schema.Literal(
  /** The default export is marked as a definition but is not an object of the expected shape. */
  "definition-shape",
  /** `config` is an Effect Schema. */
  "config-schema",
  /** `setup`, `teardown`, `onEnable` and `onDisable`, when given, are functions. */
  "lifecycle-function",
  /** Every action is built with `action({…})` or `streaming({…})`. */
  "action-shape",
  /** `description` is text. */
  "description-text",
  /** `input` is an Effect Schema. */
  "input-schema",
  /** `output` is an Effect Schema. */
  "output-schema",
  /** A unary action (`action({…})`) has `handler: (input, context) => Effect`. */
  "unary-handler",
  /** A streaming action (`streaming({…})`) has `stream: (input, context) => Stream`, not `handler`. */
  "streaming-stream",
  /** A handler returns an Effect (not a Promise, a Stream or a plain value). */
  "handler-returns-effect",
  /** A stream function returns a Stream. */
  "stream-returns-stream",
)
export type DefinitionRule = typeof DefinitionRule.Type

/** One broken rule: which action (if any), which rule, and what was found. */
export interface DefinitionProblem {
  readonly action?: string
  readonly rule: DefinitionRule
  readonly detail: string
}

/** What a value is, in the words an author would use. */
export const describeValue = (u: unknown): string => {
  if (u === undefined) return "nothing (undefined)"
  if (u === null) return "null"
  if (Effect.isEffect(u)) return "an Effect"
  if (Predicate.hasProperty(u, Stream.StreamTypeId)) return "a Stream"
  if (Predicate.isPromiseLike(u)) return "a Promise (write Effect.promise(() => …) or Effect.tryPromise to wrap one)"
  if (Schema.isSchema(u)) return "a Schema"
  if (typeof u === "function") return "a function"
  if (Array.isArray(u)) return "an array"
  if (typeof u === "object") return "a plain object"
  return `a ${typeof u} (${JSON.stringify(u)?.slice(0, 60) ?? String(u)})`
}

const own = (o: object, key: string): unknown => (Object.hasOwn(o, key) ? (o as Record<string, unknown>)[key] : undefined)

const actionProblems = (name: string, action: unknown): Array<DefinitionProblem> => {
  if (!Predicate.isRecord(action) || (own(action, "_kind") !== "unary" && own(action, "_kind") !== "streaming")) {
    return [{ action: name, rule: "action-shape", detail: `build it with action({…}) or streaming({…}) from definePlugin's builder; found ${describeValue(action)}` }]
  }
  const problems: Array<DefinitionProblem> = []
  const kind = own(action, "_kind")
  if (typeof own(action, "description") !== "string") {
    problems.push({ action: name, rule: "description-text", detail: `'description' must be text; found ${describeValue(own(action, "description"))}` })
  }
  for (const part of ["input", "output"] as const) {
    const schema = own(action, part)
    if (!Schema.isSchema(schema)) {
      problems.push({
        action: name,
        rule: part === "input" ? "input-schema" : "output-schema",
        detail: `'${part}' must be an Effect Schema (e.g. Schema.Struct({…})); found ${describeValue(schema)}`,
      })
    }
  }
  const handler = own(action, "handler")
  const stream = own(action, "stream")
  if (kind === "streaming" && typeof stream !== "function") {
    problems.push({
      action: name,
      rule: "streaming-stream",
      detail:
        typeof handler === "function"
          ? "a streaming action takes 'stream: (input, context) => Stream', not 'handler'; rename the key to 'stream'"
          : `a streaming action needs 'stream: (input, context) => Stream'; found ${describeValue(stream)}`,
    })
  }
  if (kind === "unary" && typeof handler !== "function") {
    problems.push({
      action: name,
      rule: "unary-handler",
      detail:
        typeof stream === "function"
          ? "an action with 'stream' must be built with streaming({…}), not action({…})"
          : `an action needs 'handler: (input, context) => Effect'; found ${describeValue(handler)}`,
    })
  }
  return problems
}

/**
 * Every rule a definition breaks, in a stable order (the plugin's own parts
 * first, then actions by name); empty when it keeps them all. `definition` is
 * whatever the entry module exported with the definition marker.
 */
export const definitionProblems = (definition: unknown): ReadonlyArray<DefinitionProblem> => {
  if (!Predicate.isRecord(definition)) return [{ rule: "definition-shape", detail: `found ${describeValue(definition)}` }]
  const problems: Array<DefinitionProblem> = []
  if (!Schema.isSchema(own(definition, "config"))) {
    problems.push({ rule: "config-schema", detail: `'config' must be an Effect Schema (Schema.Struct({}) for none); found ${describeValue(own(definition, "config"))}` })
  }
  for (const hook of ["setup", "teardown", "onEnable", "onDisable"] as const) {
    const value = own(definition, hook)
    if (value !== undefined && typeof value !== "function") {
      problems.push({ rule: "lifecycle-function", detail: `'${hook}' must be a function returning an Effect; found ${describeValue(value)}` })
    }
  }
  const actions = own(definition, "actions")
  if (!Predicate.isRecord(actions)) {
    problems.push({ rule: "definition-shape", detail: `'actions' must return an object of actions; found ${describeValue(actions)}` })
    return problems
  }
  for (const name of Object.keys(actions).sort()) problems.push(...actionProblems(name, actions[name]))
  return problems
}

/** Why what a handler returned breaks its rule, or undefined when it is an Effect. */
export const handlerResultProblem = (action: string, returned: unknown): DefinitionProblem | undefined =>
  Effect.isEffect(returned)
    ? undefined
    : {
        action,
        rule: "handler-returns-effect",
        detail: Predicate.hasProperty(returned, Stream.StreamTypeId)
          ? "the handler returned a Stream: declare a streaming action with streaming({ …, stream: (input, context) => Stream })"
          : `the handler must return an Effect (Effect.succeed(value) for a plain value); it returned ${describeValue(returned)}`,
      }

/** Why what a stream function returned breaks its rule, or undefined when it is a Stream. */
export const streamResultProblem = (action: string, returned: unknown): DefinitionProblem | undefined =>
  Predicate.hasProperty(returned, Stream.StreamTypeId)
    ? undefined
    : {
        action,
        rule: "stream-returns-stream",
        detail: `the stream function must return a Stream (Stream.make(…), Stream.fromIterable(…)); it returned ${describeValue(returned)}`,
      }
