import { Either, ParseResult, Schema } from "effect"

/** Caps applied to JSON read from disk or a wire before it is parsed. */
export interface JsonCaps {
  readonly maxChars: number
  readonly maxDepth: number
}

/**
 * The deepest nesting of arrays/objects in a JSON text, found without parsing it,
 * so that hostile input is refused before any recursive work happens.
 */
export const jsonNestingDepth = (text: string): number => {
  let depth = 0
  let deepest = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92 /* \ */) i++
      else if (c === 34 /* " */) inString = false
    } else if (c === 34) inString = true
    else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (++depth > deepest) deepest = depth
    } else if (c === 125 /* } */ || c === 93 /* ] */) depth--
  }
  return deepest
}

/**
 * Decodes JSON text with a Schema, never throwing: too long, too deep,
 * not JSON, or not the expected shape all come back as a readable detail.
 */
export const decodeJsonText = <A, I>(
  schema: Schema.Schema<A, I, never>,
  text: string,
  caps: JsonCaps,
): Either.Either<A, string> => {
  if (text.length > caps.maxChars) return Either.left(`larger than the cap of ${caps.maxChars} characters`)
  const depth = jsonNestingDepth(text)
  if (depth > caps.maxDepth) return Either.left(`nested ${depth} levels deep; the cap is ${caps.maxDepth}`)
  return Schema.decodeUnknownEither(Schema.parseJson(schema), { errors: "all", onExcessProperty: "error" })(text).pipe(
    Either.mapLeft((error) => ParseResult.TreeFormatter.formatErrorSync(error)),
  )
}
