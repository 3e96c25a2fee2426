// Case conversions from a real npm package, change-case, shipped in this plugin's own
// node_modules/ and pinned by the lock like every other file: `import … from "change-case"`
// resolves inside this folder only, from the verified bytes.
import { Effect, Schema, Stream } from "effect"
import { definePlugin } from "@plinth/domain"
import { camelCase, capitalCase, constantCase, kebabCase, pascalCase, snakeCase } from "change-case"

const conversions = { camel: camelCase, pascal: pascalCase, snake: snakeCase, kebab: kebabCase, constant: constantCase, capital: capitalCase }
const Case = Schema.Literal(...Object.keys(conversions))

export default definePlugin({
  config: Schema.Struct({}),
  actions: ({ action, streaming }) => ({
    convert: action({
      description: "Converts text to one case (camel, pascal, snake, kebab, constant, capital).",
      input: Schema.Struct({ text: Schema.String, to: Case }),
      output: Schema.String,
      handler: ({ text, to }) => Effect.succeed(conversions[to](text)),
    }),
    // A streaming action: `streaming({ …, stream })`, and `stream` returns a Stream.
    variants: streaming({
      description: "Streams the text in every case, one item per case.",
      input: Schema.Struct({ text: Schema.String }),
      output: Schema.Struct({ case: Case, text: Schema.String }),
      stream: ({ text }) => Stream.fromIterable(Object.entries(conversions).map(([name, convert]) => ({ case: name, text: convert(text) }))),
    }),
  }),
})
