// Text transforms spread over nested modules; every one of them is pinned by the lock.
import { Effect, Schema } from "effect"
import { definePlugin } from "@plinth/domain"
import { slugify } from "./lib/transforms/slug.mjs"
import { reverse } from "./lib/transforms/reverse.mjs"
import { wordsOf } from "./lib/words.mjs"

const Text = Schema.Struct({ text: Schema.String })

export default definePlugin({
  config: Schema.Struct({}),
  actions: ({ action }) => ({
    slugify: action({
      description: "Turns text into a URL slug.",
      input: Text,
      output: Schema.String,
      handler: ({ text }) => Effect.succeed(slugify(text)),
    }),
    reverse: action({
      description: "Reverses text by code point.",
      input: Text,
      output: Schema.String,
      handler: ({ text }) => Effect.succeed(reverse(text)),
    }),
    words: action({
      description: "Splits text into words.",
      input: Text,
      output: Schema.Array(Schema.String),
      handler: ({ text }) => Effect.succeed(wordsOf(text)),
    }),
    keywords: action({
      description: "The words of a text without the stop words listed in the plugin's data/stopwords.txt.",
      input: Text,
      output: Schema.Array(Schema.String),
      // An asset the plugin ships, read from its verified files: a worker cannot read the plugin folder on disk.
      handler: ({ text }, { files }) =>
        Effect.map(files.readText("data/stopwords.txt"), (list) => {
          const stop = new Set(list.split("\n").filter((word) => word !== ""))
          return wordsOf(text).filter((word) => !stop.has(word.toLowerCase()))
        }),
    }),
  }),
})
