// Counts words and characters.
import { Effect, Schema } from "effect"
import { definePlugin } from "@plinth/domain"

const count = (text) => ({
  words: text.split(/\s+/).filter((w) => w.length > 0).length,
  characters: [...text].length,
})

export default definePlugin({
  config: Schema.Struct({}),
  actions: ({ action }) => ({
    count: action({
      description: "Counts the words and characters of a text.",
      input: Schema.Struct({ text: Schema.String }),
      output: Schema.Struct({ words: Schema.Int, characters: Schema.Int }),
      handler: ({ text }) => Effect.succeed(count(text)),
    }),
  }),
})
