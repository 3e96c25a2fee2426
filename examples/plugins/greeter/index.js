// A single-file plugin: one action, config with a default.
import { Effect, Schema } from "effect"
import { definePlugin } from "@plinth/domain"

export default definePlugin({
  config: Schema.Struct({
    greeting: Schema.optionalWith(Schema.String, { default: () => "Hello" }),
  }),
  actions: ({ action }) => ({
    greet: action({
      description: "Greets someone by name.",
      input: Schema.Struct({ name: Schema.String }),
      output: Schema.String,
      handler: ({ name }, { config }) => Effect.succeed(`${config.greeting}, ${name}!`),
    }),
  }),
})
