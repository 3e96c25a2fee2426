// A plugin that shows what a worker can do: config with defaults, a plain
// action, a streaming one, a slow interruptible one, one failing in each error
// category, and a probe of the sandbox.
import { Duration, Effect, Schema, Stream } from "effect"
import {
  definePlugin,
  PluginFatalError,
  PluginInputError,
  PluginResourceError,
  PluginTransientError,
} from "@plinth/domain"
import { probeSandbox } from "./lib/probe.js"

const Config = Schema.Struct({
  greeting: Schema.optionalWith(Schema.String, { default: () => "Hello" }),
  punctuation: Schema.optionalWith(Schema.String, { default: () => "!" }),
})

export default definePlugin({
  config: Config,
  actions: ({ action, streaming }) => ({
    greet: action({
      description: "Greets someone with the configured greeting.",
      input: Schema.Struct({ name: Schema.String.pipe(Schema.minLength(1)) }),
      output: Schema.Struct({ text: Schema.String }),
      handler: ({ name }, { config }) => Effect.succeed({ text: `${config.greeting}, ${name}${config.punctuation}` }),
    }),
    count: streaming({
      description: "Streams the numbers 1..to, reporting progress.",
      input: Schema.Struct({ to: Schema.Int.pipe(Schema.between(1, 10000)), delayMillis: Schema.optional(Schema.Int) }),
      output: Schema.Struct({ n: Schema.Int }),
      stream: ({ to, delayMillis }, { progress }) =>
        Stream.range(1, to).pipe(
          Stream.mapEffect((n) =>
            Effect.zipRight(
              Effect.zipRight(Effect.sleep(Duration.millis(delayMillis ?? 0)), progress(n / to, `${n} of ${to}`)),
              Effect.succeed({ n }),
            ),
          ),
        ),
    }),
    slow: action({
      description: "Waits, reporting progress every tenth; interruptible.",
      input: Schema.Struct({ millis: Schema.Int.pipe(Schema.between(0, 600000)) }),
      output: Schema.Struct({ waitedMillis: Schema.Int }),
      handler: ({ millis }, { progress }) =>
        Effect.gen(function* () {
          for (let step = 1; step <= 10; step++) {
            yield* Effect.sleep(Duration.millis(millis / 10))
            yield* progress(step / 10)
          }
          return { waitedMillis: millis }
        }),
    }),
    fail: action({
      description: "Fails in the requested error category.",
      input: Schema.Struct({ category: Schema.Literal("input", "transient", "resource", "fatal", "defect") }),
      output: Schema.Struct({}),
      handler: ({ category }) => {
        switch (category) {
          case "input":
            return Effect.fail(new PluginInputError({ message: "the name is not known", fieldsInvalid: ["name"] }))
          case "transient":
            return Effect.fail(new PluginTransientError({ message: "the service is busy", retryAfterSeconds: 5 }))
          case "resource":
            return Effect.fail(
              new PluginResourceError({
                message: "not enough memory for this input",
                shortfall: { resource: "memory_mb", needed: 4096, available: 512 },
              }),
            )
          case "fatal":
            return Effect.fail(new PluginFatalError({ message: "this input can never work" }))
          case "defect":
            return Effect.die(new Error("a bug in the plugin"))
        }
      },
    }),
    probe: action({
      description: "Tries something the sandbox does not grant and reports what happened.",
      input: Schema.Struct({ attempt: Schema.Literal("read-outside", "read-own-folder", "spawn", "env", "kill-host"), target: Schema.String }),
      output: Schema.Struct({ outcome: Schema.String }),
      handler: ({ attempt, target }) => probeSandbox(attempt, target),
    }),
  }),
})
