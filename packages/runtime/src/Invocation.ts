import { Cause, Clock, Duration, Effect, Exit, Option, Stream } from "effect"
import { categoryOf, isPluginFailure, type PluginFailure, type PluginId } from "@plinth/domain"
import { CallTrace, type CallRecord } from "./observability/CallTrace.js"
import { discoverAndVerify, namingLock } from "./loading/Loader.js"
import { PluginNotFound } from "./loading/PluginNotFound.js"
import { startInstance, type StartOptions } from "./instance/Instance.js"
import { makeUsageRecorder } from "./manager/Usage.js"
import { EmpiricalStore } from "./stores/EmpiricalStore.js"
import type { ProgressReport } from "./instance/WorkerConnection.js"


export interface InvokePluginOptions extends StartVerifiedOptions {
  readonly action: string
  readonly input: unknown
  readonly timeout?: Duration.DurationInput
  readonly onProgress?: (report: ProgressReport) => void
  /** Receives each item of a streaming action as it arrives. */
  readonly onItem?: (item: unknown) => Effect.Effect<void>
}

export type InvocationResult =
  | { readonly kind: "value"; readonly value: unknown }
  | { readonly kind: "stream"; readonly items: number }

export interface StartVerifiedOptions {
  readonly root: string
  readonly lock: string
  readonly plugin: string
  readonly config?: unknown
  readonly startOptions?: Partial<Pick<StartOptions, "dataRoot" | "startTimeout" | "interruptGrace" | "isolation">>
}

/**
 * Verifies every plugin (the same contract as loading), then starts the one
 * named in a sandboxed worker, inside the current scope. To start several,
 * call `discoverAndVerify` once and `startInstance` for each.
 */
export const startVerifiedPlugin = (options: StartVerifiedOptions) => Effect.map(startVerifiedWithLock(options), ({ instance }) => instance)

/** `startVerifiedPlugin`, with the lock entry the plugin was verified against. */
const startVerifiedWithLock = (options: StartVerifiedOptions) =>
  Effect.gen(function* () {
    const { lock, discovered } = yield* discoverAndVerify({ root: options.root, lock: options.lock })
    const plugin = discovered.find((p) => p.id === options.plugin)
    if (plugin === undefined) return yield* new PluginNotFound({ plugin: options.plugin, known: discovered.map((p) => p.id) })
    const locked = lock.plugins[plugin.id as PluginId]!
    const instance = yield* startInstance({ plugin, locked, config: options.config, ...options.startOptions }).pipe(
      Effect.mapError(namingLock(options.lock)),
    )
    return { instance, locked }
  }).pipe(Effect.withSpan("plinth.load", { attributes: { "plinth.plugin": options.plugin }, captureStackTrace: false }))

/**
 * The whole operation behind `plinth plugins invoke`: verify every plugin
 * (the same contract as loading), start the one named in a sandboxed worker
 * from its verified bytes, call the action (streaming ones item by item),
 * stop the worker, and record the call in the CallTrace when one is provided.
 */
export const invokePlugin = (options: InvokePluginOptions) =>
  Effect.scoped(
    Effect.gen(function* () {
      const { instance, locked } = yield* startVerifiedWithLock(options)
      // With an EmpiricalStore (the CLI's, in <data-dir>/plinth.db), the call's measured cost is a sample, as under the manager.
      const store = yield* Effect.serviceOption(EmpiricalStore)
      const probe = Option.map(store, (store) =>
        makeUsageRecorder(store).begin({ plugin: { id: options.plugin, locked }, config: (options.config ?? {}) as Readonly<Record<string, unknown>> }, undefined),
      )
      const usageOption = Option.match(probe, { onNone: () => ({}), onSome: (probe) => ({ onUsage: probe.onUsage }) })
      // The reviewed manifest says what kind of call an action takes, not the worker.
      const streaming = Object.hasOwn(instance.actions, options.action) && instance.actions[options.action]?.streaming === true
      const started = yield* Clock.currentTimeMillis
      let items = 0
      const call: Effect.Effect<InvocationResult, PluginFailure> = streaming
        ? Stream.runForEach(instance.stream(options.action, options.input, { ...progressOption(options), ...timeoutOption(options), ...usageOption }), (item) => {
            items++
            return options.onItem?.(item) ?? Effect.void
          }).pipe(Effect.map(() => ({ kind: "stream" as const, items })))
        : Effect.map(
            instance.invoke(options.action, options.input, { ...progressOption(options), ...timeoutOption(options), ...usageOption }),
            (value) => ({ kind: "value" as const, value }),
          )
      return yield* call.pipe(
        Effect.withSpan("plinth.call", {
          attributes: { "plinth.plugin": options.plugin, "plinth.instance": instance.id, "plinth.action": options.action, "plinth.attempt": 1 },
          captureStackTrace: false,
        }),
        Effect.onExit((exit) =>
          Effect.gen(function* () {
            if (Option.isSome(probe)) yield* probe.value.end(exit)
            const trace = yield* Effect.serviceOption(CallTrace)
            if (Option.isNone(trace)) return
            const finished = yield* Clock.currentTimeMillis
            yield* trace.value.record(callRecord(options, instance.id, started, finished, exit, streaming ? items : undefined)).pipe(Effect.ignore)
          }),
        ),
      )
    }),
  )

/** For a streaming action, the timeout bounds the whole stream. */
const timeoutOption = (options: InvokePluginOptions) => (options.timeout !== undefined ? { timeout: options.timeout } : {})

const progressOption = (options: InvokePluginOptions) => (options.onProgress !== undefined ? { onProgress: options.onProgress } : {})

const callRecord = (
  options: InvokePluginOptions,
  instance: string,
  started: number,
  finished: number,
  exit: Exit.Exit<unknown, unknown>,
  items: number | undefined,
): CallRecord => {
  const base = {
    at: new Date(started).toISOString(),
    plugin: options.plugin,
    instance,
    action: options.action,
    durationMs: finished - started,
    ...(items !== undefined ? { items } : {}),
  }
  if (Exit.isSuccess(exit)) return { ...base, outcome: "ok" }
  if (Exit.isInterrupted(exit)) return { ...base, outcome: "interrupted" }
  const failure = Cause.squash(exit.cause)
  return isPluginFailure(failure)
    ? { ...base, outcome: "failed", category: categoryOf(failure), message: failure.message }
    : { ...base, outcome: "failed", category: "fatal", message: String(failure) }
}
