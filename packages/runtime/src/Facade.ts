import { Data, Duration, Effect, Either, Exit, ManagedRuntime, Scope, Stream } from "effect"
import { toJobError, type JobError, type LoadReport, type PluginFailure, type PluginRejected } from "@plinth/domain"
import { PlinthLive } from "./Layers.js"
import { startVerifiedPlugin } from "./Invocation.js"
import { loadPlugins, type LoadOptions } from "./loading/Loader.js"
import type { StartFailure } from "./instance/Instance.js"
import type { IsolationTier } from "./instance/Isolation.js"
import type { ProgressReport } from "./instance/WorkerConnection.js"
import type { PluginNotFound } from "./loading/PluginNotFound.js"
import { Registry, type DuplicatePlugin, type RegisteredPlugin } from "./loading/Registry.js"

export type LoadOutcome =
  | { readonly ok: true; readonly report: LoadReport }
  | { readonly ok: false; readonly rejection: PluginRejected | DuplicatePlugin }

export type CallOutcome =
  | { readonly ok: true; readonly result: unknown }
  | { readonly ok: false; readonly failure: PluginFailure; readonly job: JobError }

/**
 * What a facade stream throws from its loop when the call fails: the typed
 * failure and its error-taxonomy summary, as `CallOutcome` carries them.
 */
export class StreamCallFailed extends Data.TaggedError("StreamCallFailed")<{
  readonly failure: PluginFailure
  readonly job: JobError
}> {
  override get message() {
    return this.job.message
  }
}

export interface FacadeStreamOptions {
  /** The whole stream must end within this; otherwise it fails with InvokeTimeout and the call is cancelled. */
  readonly timeout?: Duration.DurationInput
  /** At most this long between two items (or progress reports). */
  readonly idleTimeout?: Duration.DurationInput
  /** Receives the plugin's progress reports. */
  readonly onProgress?: (report: ProgressReport) => void
}

export interface FacadeInstance {
  readonly id: string
  readonly plugin: string
  /** The isolation tier its worker runs in. */
  readonly isolation: IsolationTier
  /** Resolves with the outcome; a failure is a typed value with its error-taxonomy summary. */
  readonly invoke: (action: string, input: unknown, options?: { readonly timeout?: Duration.DurationInput }) => Promise<CallOutcome>
  /**
   * Calls a streaming action: `for await (const item of instance.stream(action, input))`.
   * Items arrive as the plugin produces them, with backpressure (the worker
   * pulls only while the loop keeps up). Leaving the loop early (`break`,
   * `return`, a throw) cancels the call in the worker. A failed call throws
   * `StreamCallFailed` from the loop. Nothing is sent until the loop starts.
   */
  readonly stream: (action: string, input: unknown, options?: FacadeStreamOptions) => AsyncIterable<unknown>
  /** Stops the worker. Safe to call twice. */
  readonly stop: () => Promise<void>
}

export type StartOutcome =
  | { readonly ok: true; readonly instance: FacadeInstance }
  | { readonly ok: false; readonly failure: PluginRejected | StartFailure | PluginNotFound }

export interface StartFacadeOptions extends LoadOptions {
  readonly plugin: string
  readonly config?: unknown
  readonly isolation?: IsolationTier
  readonly dataRoot?: string
}

/**
 * A Promise facade for hosts that do not use Effect. One instance owns one
 * registry and the workers it starts; `dispose` stops them and releases everything.
 */
export interface Plinth {
  /** Resolves with the outcome; a rejection is a value here, never a thrown string. */
  readonly loadPlugins: (options: LoadOptions) => Promise<LoadOutcome>
  readonly plugins: () => Promise<ReadonlyArray<RegisteredPlugin>>
  readonly reset: () => Promise<void>
  /**
   * Verifies every plugin (the same checks as `loadPlugins`, without importing
   * any into this process), then starts `plugin` in a sandboxed worker process
   * from its verified bytes. `config` is checked against the manifest's config
   * schema first; `isolation` asks for a tier (default: the strongest
   * available); `dataRoot` is where granted data folders are made
   * (`<dataRoot>/<plugin>`, default `.plinth/data`). The instance lives until
   * its `stop()` or this facade's `dispose()`.
   */
  readonly start: (options: StartFacadeOptions) => Promise<StartOutcome>
  readonly dispose: () => Promise<void>
}

export const createPlinth = (): Plinth => {
  const runtime = ManagedRuntime.make(PlinthLive)
  const openScopes = new Set<Scope.CloseableScope>()
  const closeScope = (scope: Scope.CloseableScope) =>
    openScopes.delete(scope) ? runtime.runPromise(Scope.close(scope, Exit.void)) : Promise.resolve()

  return {
    loadPlugins: (options) =>
      runtime.runPromise(
        loadPlugins(options).pipe(
          Effect.either,
          Effect.map(
            (result): LoadOutcome =>
              Either.isRight(result) ? { ok: true, report: result.right } : { ok: false, rejection: result.left },
          ),
        ),
      ),
    plugins: () => runtime.runPromise(Effect.flatMap(Registry, (r) => r.list)),
    reset: () => runtime.runPromise(Effect.flatMap(Registry, (r) => r.reset)),
    start: async (options) => {
      const scope = await runtime.runPromise(Scope.make())
      openScopes.add(scope)
      const started = await runtime.runPromise(
        startVerifiedPlugin({
          ...options,
          startOptions: {
            ...(options.isolation !== undefined ? { isolation: options.isolation } : {}),
            ...(options.dataRoot !== undefined ? { dataRoot: options.dataRoot } : {}),
          },
        }).pipe(Scope.extend(scope), Effect.either),
      )
      if (Either.isLeft(started)) {
        await closeScope(scope)
        return { ok: false, failure: started.left }
      }
      const instance = started.right
      const jobOf = (failure: PluginFailure) => toJobError(failure, { plugin: instance.plugin, instance: instance.id, time: new Date() })
      const facadeInstance: FacadeInstance = {
        id: instance.id,
        plugin: instance.plugin,
        isolation: instance.isolation,
        invoke: (action, input, callOptions) =>
          runtime.runPromise(
            instance.invoke(action, input, callOptions?.timeout !== undefined ? { timeout: callOptions.timeout } : {}).pipe(
              Effect.either,
              Effect.map(
                (result): CallOutcome =>
                  Either.isRight(result)
                    ? { ok: true, result: result.right }
                    : { ok: false, failure: result.left, job: jobOf(result.left) },
              ),
            ),
          ),
        // The iterator's `return()` (run by `break`) interrupts the pulling fiber, which cancels the call in the worker.
        stream: (action, input, streamOptions = {}) =>
          Stream.toAsyncIterable(
            instance
              .stream(action, input, streamOptions)
              .pipe(Stream.mapError((failure) => new StreamCallFailed({ failure, job: jobOf(failure) }))),
          ),
        stop: () => closeScope(scope),
      }
      return { ok: true, instance: facadeInstance }
    },
    dispose: async () => {
      await Promise.all([...openScopes].map(closeScope))
      await runtime.dispose()
    },
  }
}
