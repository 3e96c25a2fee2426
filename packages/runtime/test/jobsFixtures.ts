import { Effect, Layer, Stream, type Scope } from "effect"
import type { JobEvent } from "@plinth/domain"
import { JobQueue, type EventFilter, type JobQueueOptions } from "../src/jobs/JobQueue.js"
import { JobQueueLive } from "../src/jobs/JobQueueLive.js"
import type { ProcessSpawner } from "../src/instance/ProcessSpawner.js"
import { PluginManager, type PluginManagerOptions } from "../src/manager/PluginManager.js"
import type { JobJournal } from "../src/stores/JobJournal.js"
import { managerLayer, type ManagerWorkspace } from "./managerFixtures.js"

/**
 * A plugin for the queue's tests: work that takes a while and reports
 * progress (and honours interruption, as Effect code does), failures in
 * each category, a call that fails transiently a given number of times
 * before it succeeds, and a busy loop that never yields (ignores interruption).
 */
export const jobsPluginSource = `
import { Effect, Schema, Duration } from "effect"
import { definePlugin, PluginInputError, PluginTransientError, PluginFatalError, PluginResourceError } from "@plinth/domain"
const attempts = new Map()
export default definePlugin({
  config: Schema.Struct({}),
  actions: ({ action }) => ({
    work: action({
      description: "waits millis in ten steps, reporting each",
      input: Schema.Struct({ millis: Schema.Number, tag: Schema.optional(Schema.String) }),
      output: Schema.Struct({ tag: Schema.optional(Schema.String), pid: Schema.Number }),
      handler: ({ millis, tag }, { progress }) =>
        Effect.gen(function* () {
          for (let step = 1; step <= 10; step++) {
            yield* Effect.sleep(Duration.millis(millis / 10))
            yield* progress(step / 10, "step " + step)
          }
          return { ...(tag === undefined ? {} : { tag }), pid: process.pid }
        }),
    }),
    same: action({
      description: "reports the same progress many times, then a new one",
      input: Schema.Struct({}),
      output: Schema.Null,
      handler: (_, { progress }) =>
        Effect.gen(function* () {
          for (let i = 0; i < 5; i++) yield* progress(0.5, "half")
          yield* progress(0.5, "still half")
          yield* progress(1)
          return null
        }),
    }),
    fail: action({
      description: "fails in the category asked for",
      input: Schema.Struct({ category: Schema.Literal("input", "transient", "fatal"), retryAfterSeconds: Schema.optional(Schema.Number) }),
      output: Schema.Null,
      handler: ({ category, retryAfterSeconds }) =>
        Effect.fail(
          category === "input" ? new PluginInputError({ message: "bad input" })
          : category === "transient" ? new PluginTransientError({ message: "try later", ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) })
          : new PluginFatalError({ message: "broken" }),
        ),
    }),
    flaky: action({
      description: "fails transiently the first 'failures' times it is called with this key",
      input: Schema.Struct({ key: Schema.String, failures: Schema.Number }),
      output: Schema.Number,
      handler: ({ key, failures }) =>
        Effect.suspend(() => {
          const n = (attempts.get(key) ?? 0) + 1
          attempts.set(key, n)
          return n <= failures ? Effect.fail(new PluginTransientError({ message: "flaky " + n })) : Effect.succeed(n)
        }),
    }),
    spin: action({
      description: "a busy loop that never yields, so it cannot be interrupted",
      input: Schema.Struct({}),
      output: Schema.Null,
      handler: () => Effect.sync(() => { for (;;) {} }),
    }),
    short: action({
      description: "says it lacks memory (the manager retries it on a fresh worker)",
      input: Schema.Struct({}),
      output: Schema.Null,
      handler: () => Effect.fail(new PluginResourceError({ message: "not enough memory" })),
    }),
    pid: action({ description: "the worker's pid", input: Schema.Struct({}), output: Schema.Number, handler: () => Effect.sync(() => process.pid) }),
  }),
})
`

/** A manager over the workspace and a queue over it; both in the layer's output. */
export const queueLayer = (
  ws: ManagerWorkspace,
  spawner: Layer.Layer<ProcessSpawner>,
  options: JobQueueOptions = {},
  journal: Layer.Layer<JobJournal> | undefined = undefined,
  managerOptions: Partial<PluginManagerOptions> = {},
): Layer.Layer<JobQueue | PluginManager, unknown> => {
  const manager = managerLayer(ws, spawner, managerOptions)
  const queue = JobQueueLive(options).pipe(Layer.provide(journal === undefined ? manager : Layer.merge(manager, journal)))
  return Layer.provideMerge(queue, manager)
}

/**
 * As `queueLayer`, with these plugins' default instances loaded before the
 * queue starts: a queue recovering its journal runs its jobs at once, so
 * their instances must be there (as a host loads its plugins first).
 */
export const loadedQueueLayer = (
  ws: ManagerWorkspace,
  spawner: Layer.Layer<ProcessSpawner>,
  plugins: ReadonlyArray<string>,
  options: JobQueueOptions = {},
  journal: Layer.Layer<JobJournal> | undefined = undefined,
): Layer.Layer<JobQueue | PluginManager, unknown> => {
  const manager = managerLayer(ws, spawner)
  const loaded = Layer.effectDiscard(Effect.flatMap(PluginManager, (m) => Effect.forEach(plugins, (p) => m.load(p)))).pipe(Layer.provide(manager))
  const queue = JobQueueLive(options).pipe(Layer.provide(Layer.mergeAll(manager, loaded, journal ?? Layer.empty)))
  return Layer.provideMerge(queue, manager)
}

/** Collects the events a filter lets through, from now until the scope closes. */
export const collect = (filter: EventFilter, buffer = 1000): Effect.Effect<Array<JobEvent>, never, JobQueue | Scope.Scope> =>
  Effect.gen(function* () {
    const queue = yield* JobQueue
    const subscription = yield* queue.subscribe(filter, { buffer })
    const seen: Array<JobEvent> = []
    yield* Effect.forkScoped(Stream.runForEach(subscription.events, (event) => Effect.sync(() => void seen.push(event))))
    return seen
  })

/** Waits (politely) until `check` holds. */
export const eventually = <E, R>(check: Effect.Effect<boolean, E, R>, what = "the condition") =>
  Effect.gen(function* () {
    for (let i = 0; i < 1000; i++) {
      if (yield* check) return
      yield* Effect.sleep("10 millis")
    }
    return yield* Effect.die(new Error(`${what} never held`))
  })

/** The events' tags with the fields a test compares, in order. */
export const summary = (events: ReadonlyArray<JobEvent>) =>
  events.map((e) =>
    e._tag === "stateChanged" ? `${e.from}>${e.to}` : e._tag === "cancelPhaseChanged" ? `phase:${e.to}` : e._tag,
  )
