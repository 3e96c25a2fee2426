import { Effect, ParseResult, Predicate, Schema, type SchemaAST } from "effect"

/**
 * A JSON object used as a dictionary, decoded into an object without a
 * prototype, so that every name is an ordinary key: `Schema.Record` builds its
 * result with assignments on `{}`, which silently drops a key named
 * `__proto__`, and a lookup of an absent `toString` or `constructor` on a plain
 * object finds `Object.prototype`'s. File names, plugin ids and action names
 * are data, so they must not meet either trap.
 */
export type OwnRecord<K extends string, V> = { readonly [P in K]: V }

/** An empty dictionary without a prototype. */
export const emptyOwnRecord = <V>(): Record<string, V> => Object.create(null) as Record<string, V>

/** A dictionary without a prototype from its entries (a key given twice keeps its last value). */
export const ownRecordFrom = <V>(entries: Iterable<readonly [string, V]>): Record<string, V> => {
  const out = emptyOwnRecord<V>()
  for (const [key, value] of entries) out[key] = value
  return out
}

const transformEntries =
  (direction: "decode" | "encode") =>
  (key: Schema.Schema<any, any, never>, value: Schema.Schema<any, any, never>) =>
  (input: unknown, options: SchemaAST.ParseOptions, ast: SchemaAST.AST) => {
    if (!Predicate.isRecord(input)) return Effect.fail(new ParseResult.Type(ast, input, "expected a JSON object"))
    const parseKey = direction === "decode" ? ParseResult.decodeUnknown(key) : ParseResult.encodeUnknown(key)
    const parseValue = direction === "decode" ? ParseResult.decodeUnknown(value) : ParseResult.encodeUnknown(value)
    const out = emptyOwnRecord<unknown>()
    const issues: Array<ParseResult.ParseIssue> = []
    return Effect.gen(function* () {
      for (const name of Object.keys(input)) {
        const k = yield* Effect.either(parseKey(name, options))
        if (k._tag === "Left") {
          issues.push(new ParseResult.Pointer(name, input, k.left))
          if (options?.errors !== "all") break
          continue
        }
        const v = yield* Effect.either(parseValue(input[name], options))
        if (v._tag === "Left") {
          issues.push(new ParseResult.Pointer(name, input, v.left))
          if (options?.errors !== "all") break
          continue
        }
        out[k.right as string] = v.right
      }
      if (issues.length > 0) return yield* Effect.fail(new ParseResult.Composite(ast, input, issues as [ParseResult.ParseIssue, ...Array<ParseResult.ParseIssue>], out))
      return out
    })
  }

/**
 * `Schema.Record` for dictionaries read from JSON, decoding to (and encoding
 * from) prototype-free objects; every key and value is checked.
 */
export const OwnRecord = <K extends Schema.Schema<any, string, never>, V extends Schema.Schema<any, any, never>>(options: {
  readonly key: K
  readonly value: V
}): Schema.Schema<OwnRecord<Schema.Schema.Type<K>, Schema.Schema.Type<V>>, { readonly [x: string]: Schema.Schema.Encoded<V> }> =>
  Schema.declare([options.key, options.value], {
    decode: transformEntries("decode"),
    encode: transformEntries("encode"),
  }, {
    description: "a JSON object",
    jsonSchema: { type: "object" },
  }) as any
