import * as effect from "effect"
import * as domain from "@plinth/domain"

/*
 * The libraries a plugin may import, served from the worker runtime's own
 * module instances. Plugins and the runtime must share one `effect`: the
 * runtime runs the plugin's Effects and Streams and decodes with its Schemas,
 * and `@plinth/domain`'s failures and definition marker are recognised by
 * identity. Serving these namespaces (instead of importing the packages
 * again) keeps that true when the runtime is bundled into one file, and
 * means the worker never reads `node_modules` for a plugin.
 */

const namespaces = effect as unknown as Readonly<Record<string, Record<string, unknown> | undefined>>

/** The namespace for `effect`, `effect/<Module>` or `@plinth/domain`; undefined for anything else. */
export const sharedLibrary = (specifier: string): Record<string, unknown> | undefined => {
  if (specifier === "effect") return effect as unknown as Record<string, unknown>
  if (specifier === "@plinth/domain") return domain as unknown as Record<string, unknown>
  if (specifier.startsWith("effect/")) {
    const name = specifier.slice("effect/".length)
    return /^[A-Z]\w*$/.test(name) && Object.hasOwn(namespaces, name) ? namespaces[name] : undefined
  }
  return undefined
}
