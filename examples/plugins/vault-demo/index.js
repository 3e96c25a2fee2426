// A plugin that needs a secret: its manifest declares VAULT_TOKEN, the
// operator sets it (`plinth secrets set vault-demo VAULT_TOKEN`), and the
// worker receives it in its start handshake as a Redacted value. The plugin
// signs messages with it and never hands the token itself back.
import { Effect, Option, Redacted, Schema } from "effect"
import { definePlugin, PluginInputError } from "@plinth/domain"

/** FNV-1a, 32 bits: a stand-in for a real keyed signature (an HMAC) that needs no import. */
const fnv1a = (text) => {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193) >>> 0
  }
  return hash.toString(16).padStart(8, "0")
}

export default definePlugin({
  config: Schema.Struct({
    label: Schema.optionalWith(Schema.String, { default: () => "vault" }),
  }),
  actions: ({ action }) => ({
    sign: action({
      description: "Signs a message with the VAULT_TOKEN secret; returns the signature, never the token.",
      input: Schema.Struct({ message: Schema.String }),
      output: Schema.Struct({ label: Schema.String, message: Schema.String, signature: Schema.String, tokenLength: Schema.Number }),
      handler: ({ message }, { config, secrets }) =>
        Option.match(secrets.get("VAULT_TOKEN"), {
          onNone: () => Effect.fail(new PluginInputError({ message: "VAULT_TOKEN is not set; run 'plinth secrets set vault-demo VAULT_TOKEN'" })),
          onSome: (token) => {
            const value = Redacted.value(token)
            return Effect.succeed({ label: config.label, message, signature: fnv1a(`${value}\u0000${message}`), tokenLength: value.length })
          },
        }),
    }),
  }),
})
