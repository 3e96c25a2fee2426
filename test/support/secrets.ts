/**
 * A plugin that declares API_TOKEN and handles it every way a plugin might: derives from it,
 * fails holding it, throws it, logs it, exits holding it, and looks for what it may not see.
 */
export const vaultSource = `
import { Effect, Option, Redacted, Schema } from "effect"
import { definePlugin, PluginTransientError } from "@plinth/domain"

const tokenOf = (secrets) => Option.getOrThrow(secrets.get("API_TOKEN"))

export default definePlugin({
  config: Schema.Struct({}),
  actions: ({ action }) => ({
    digest: action({
      description: "Something derived from the token, not the token",
      input: Schema.Struct({}),
      output: Schema.Struct({ length: Schema.Number, sum: Schema.Number, names: Schema.Array(Schema.String) }),
      handler: (_, { secrets }) => Effect.sync(() => {
        const text = Redacted.value(tokenOf(secrets))
        let sum = 0
        for (const c of text) sum = (sum + c.charCodeAt(0)) % 997
        return { length: text.length, sum, names: [...secrets.names] }
      }),
    }),
    fail: action({
      description: "Fails while holding the token",
      input: Schema.Struct({}),
      output: Schema.String,
      handler: (_, { secrets }) => Effect.fail(new PluginTransientError({ message: \`upstream refused \${tokenOf(secrets)}\` })),
    }),
    crash: action({
      description: "Throws an error that carries the token",
      input: Schema.Struct({}),
      output: Schema.String,
      handler: (_, { secrets }) => Effect.sync(() => {
        const token = tokenOf(secrets)
        throw Object.assign(new Error(\`crashed with \${token}\`), { token, detail: { token } })
      }),
    }),
    log: action({
      description: "Logs the token every way a handler might",
      input: Schema.Struct({}),
      output: Schema.String,
      handler: (_, { secrets }) => Effect.gen(function* () {
        const token = tokenOf(secrets)
        console.log("stdout:", String(token))
        console.error("stderr:", token, { token }, \`\${token} \${JSON.stringify({ token })}\`)
        yield* Effect.log("effect log", token)
        return "logged " + String(token)
      }),
    }),
    logExit: action({
      description: "Logs the token, then ends its worker: the host shows what the worker wrote on stderr",
      input: Schema.Struct({}),
      output: Schema.String,
      handler: (_, { secrets }) => Effect.sync(() => {
        const token = tokenOf(secrets)
        console.error(\`about to exit holding \${token}\`, token, { token })
        process.exit(3)
      }),
    }),
    peek: action({
      description: "What else the handler can see",
      input: Schema.Struct({}),
      output: Schema.Struct({ undeclared: Schema.Boolean, othersSecret: Schema.Boolean, inEnv: Schema.Boolean }),
      handler: (_, { secrets }) => Effect.sync(() => ({
        undeclared: Option.isSome(secrets.get("UNDECLARED")),
        othersSecret: Option.isSome(secrets.get("OTHER_TOKEN")),
        inEnv: Object.keys(process.env).some((k) => k.includes("TOKEN")),
      })),
    }),
  }),
})
`
