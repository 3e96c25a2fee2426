import { Effect, Option } from "effect"
import { ConfigInvalid, printableValue, unknownConfigKeys, withoutUnknownKeys, type PluginManifest, type SchemaViolation } from "@plinth/domain"
import { checkConfig } from "../instance/Contract.js"

/**
 * A plugin's config as a worker will get it, checked on the host: a JSON
 * object, unknown keys refused (strict) or dropped (lenient), then checked
 * against the manifest's config JSON Schema. The plugin's own Schema decodes
 * it again in the worker. The manager checks every load and update with this;
 * `plinth plugins config --set` checks a config before persisting it.
 */
export const checkHostConfig = (
  plugin: string,
  manifest: PluginManifest,
  config: unknown,
  strict: boolean,
): Effect.Effect<Readonly<Record<string, unknown>>, ConfigInvalid | SchemaViolation> =>
  Effect.gen(function* () {
    if (typeof config !== "object" || config === null || Array.isArray(config)) {
      return yield* new ConfigInvalid({ plugin, fieldsInvalid: ["(root)"], detail: `a config is a JSON object, not ${printableValue(config)}` })
    }
    const record = config as Readonly<Record<string, unknown>>
    const schema = manifest.config
    const unknown = unknownConfigKeys(schema, record)
    const candidate = strict ? record : withoutUnknownKeys(schema, record)
    const refused = yield* Effect.flip(checkConfig(plugin, manifest, candidate)).pipe(Effect.option)
    const fields = new Set(strict ? unknown : [])
    const details: Array<string> = []
    if (strict && unknown.length > 0) details.push(`unknown ${unknown.length === 1 ? "key" : "keys"} ${unknown.map((k) => `'${k}'`).join(", ")} (load with strict: false to drop unknown keys)`)
    if (Option.isSome(refused)) {
      const error = refused.value
      if (error._tag === "SchemaViolation") return yield* error
      for (const field of error.fieldsInvalid ?? ["(root)"]) fields.add(field)
      if (!(strict && unknown.length > 0 && [...(error.fieldsInvalid ?? [])].every((f) => unknown.includes(f)))) {
        details.push(error.message.replace(/^invalid config: /, ""))
      }
    }
    if (fields.size > 0) return yield* new ConfigInvalid({ plugin, fieldsInvalid: [...fields].sort(), detail: details.join("; ") })
    return candidate
  })
