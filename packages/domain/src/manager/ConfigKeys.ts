import { Predicate } from "effect"

/*
 * The top-level keys a config schema knows. Strict loading refuses a config
 * with any other key, lenient loading drops them, whatever the schema says
 * about `additionalProperties`: "unknown key" means the same to every plugin.
 */

/** The schema a `$ref` of the form `#/$defs/Name` (or `#/definitions/Name`) points at, one level deep. */
const resolveRoot = (schema: Readonly<Record<string, unknown>>): Readonly<Record<string, unknown>> => {
  const ref = schema["$ref"]
  if (typeof ref !== "string") return schema
  const match = /^#\/(\$defs|definitions)\/(.+)$/.exec(ref)
  if (match === null) return schema
  const defs = schema[match[1]!]
  const target = Predicate.isRecord(defs) ? defs[match[2]!.replace(/~1/g, "/").replace(/~0/g, "~")] : undefined
  return Predicate.isRecord(target) ? target : schema
}

/** The property names the schema declares at the top level, or undefined when it names none (anything goes). */
export const knownConfigKeys = (schema: Readonly<Record<string, unknown>> | undefined): ReadonlySet<string> | undefined => {
  if (schema === undefined) return undefined
  const root = resolveRoot(schema)
  const properties = root["properties"]
  // A record's schema (`additionalProperties` a schema, or `patternProperties`) names the keys it takes by their values: any key is known.
  if (Predicate.isRecord(root["additionalProperties"]) || root["additionalProperties"] === true || root["patternProperties"] !== undefined) return undefined
  if (!Predicate.isRecord(properties)) {
    // An object schema with no properties and additionalProperties false knows no keys at all.
    return root["additionalProperties"] === false ? new Set() : undefined
  }
  return new Set(Object.keys(properties))
}

/** The keys of `config` the schema does not know, sorted. */
export const unknownConfigKeys = (schema: Readonly<Record<string, unknown>> | undefined, config: Readonly<Record<string, unknown>>): ReadonlyArray<string> => {
  const known = knownConfigKeys(schema)
  if (known === undefined) return []
  return Object.keys(config).filter((key) => !known.has(key)).sort()
}

/** The config without the keys the schema does not know. */
export const withoutUnknownKeys = (
  schema: Readonly<Record<string, unknown>> | undefined,
  config: Readonly<Record<string, unknown>>,
): Record<string, unknown> => {
  const unknown = new Set(unknownConfigKeys(schema, config))
  return Object.fromEntries(Object.entries(config).filter(([key]) => !unknown.has(key)))
}
