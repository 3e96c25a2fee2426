import { describe, expect, it } from "vitest"
import { Either, Option, Redacted } from "effect"
import { decodeManifest, isRequiredSecret } from "../src/Manifest.js"
import { secretsOf } from "../src/PluginDefinition.js"
import { MissingSecret, categoryOf } from "../src/ErrorTaxonomy.js"

const manifest = (extra: Record<string, unknown>) =>
  JSON.stringify({ id: "p", version: "1.0.0", description: "d", entry: "index.js", ...extra })

describe("the manifest's secrets", () => {
  it("declares secrets by name, required unless it says otherwise", () => {
    const decoded = Either.getOrThrow(
      decodeManifest(manifest({ secrets: [{ name: "API_TOKEN", required: true, description: "the token" }, { name: "KEY_2", required: false }, { name: "X" }] })),
    )
    expect(decoded.secrets?.map((s) => [s.name, isRequiredSecret(s)])).toEqual([["API_TOKEN", true], ["KEY_2", false], ["X", true]])
    expect(Either.getOrThrow(decodeManifest(manifest({}))).secrets).toBeUndefined()
  })

  it("refuses bad names, a name declared twice and unknown fields, saying which and why", () => {
    const problem = (secrets: unknown) => Either.getLeft(decodeManifest(manifest({ secrets }))).pipe(Option.getOrThrow)
    expect(problem([{ name: "api_token" }])).toContain("an upper-case letter")
    expect(problem([{ name: "A".repeat(65) }])).toContain("up to 63 upper-case letters")
    expect(problem([{ name: "A" }, { name: "A" }])).toContain("the secret 'A' is declared twice")
    // A value written into the manifest by mistake is named by its key, never quoted.
    expect(problem([{ name: "A", value: "inline-value" }])).toContain("secrets[0].value: not allowed here")
    expect(problem([{ name: "A", value: "inline-value" }])).not.toContain("inline-value")
    expect(problem({ name: "A" })).toContain("secrets")
  })

  it("MissingSecret is an input failure naming the secrets, never a value", () => {
    const missing = new MissingSecret({ plugin: "p", names: ["A", "B"] })
    expect(categoryOf(missing)).toBe("input")
    expect(missing.message).toBe("the plugin 'p' needs the secrets A, B, not set in the secret store; nothing was started")
  })

  it("a handler's secrets are Redacted, and only those given", () => {
    const secrets = secretsOf(new Map([["B", Redacted.make("b")], ["A", Redacted.make("a")]]))
    expect(secrets.names).toEqual(["A", "B"])
    expect(String(Option.getOrThrow(secrets.get("A")))).toBe("<redacted>")
    expect(Option.isNone(secrets.get("C"))).toBe(true)
    expect(Option.isNone(secrets.get("__proto__"))).toBe(true)
  })
})
