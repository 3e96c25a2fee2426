import { Duration, Effect, Either, Exit, ManagedRuntime, Scope } from "effect"
import { toJobError, type JobError, type LoadReport, type PluginFailure, type PluginRejected } from "@plinth/domain"
import { PlinthLive } from "./Layers.js"
import { startVerifiedPlugin } from "./Invocation.js"
import { loadPlugins, type LoadOptions } from "./loading/Loader.js"
import type { StartFailure } from "./instance/Instance.js"
import type { IsolationTier } from "./instance/Isolation.js"
import type { PluginNotFound } from "./loading/PluginNotFound.js"
import { Registry, type DuplicatePlugin, type RegisteredPlugin } from "./loading/Registry.js"

export type LoadOutcome =
  | { readonly ok: true; readonly report: LoadReport }
  | { readonly ok: false; readonly rejection: PluginRejected | DuplicatePlugin }

export type CallOutcome =
  | { readonly ok: true; readonly result: unknown }
  | { readonly ok: false; readonly failure: PluginFailure; readonly job: JobError }

export interface FacadeInstance {
  readonly id: string
  readonly plugin: string
  /** The isolation tier its worker runs in. */
  readonly isolation: IsolationTier
  /** Resolves with the outcome; a failure is a typed value with its error-taxonomy summary. */
  readonly invoke: (action: string, input: unknown, options?: { readonly timeout?: Duration.DurationInput }) => Promise<CallOutcome>
  /** Stops the worker. Safe to call twice. */
  readonly stop: () => Promise<void>
}

export type StartOutcome =
  | { readonly ok: true; readonly instance: FacadeInstance }
  | { readonly ok: false; readonly failure: PluginRejected | StartFailure | PluginNotFound }

/**
 * A Promise facade for hosts that do not use Effect. One instance owns one
 * registry and the workers it starts; `dispose` stops them and releases everything.
 */
export interface Plinth {
  /** Resolves with the outcome; a rejection is a value here, never a thrown string. */
  readonly loadPlugins: (options: LoadOptions) => Promise<LoadOutcome>
  readonly plugins: () => Promise<ReadonlyArray<RegisteredPlugin>>
  readonly reset: () => Promise<void>
  /** Verifies every plugin, then starts one in a sandboxed worker process. */
  readonly start: (options: LoadOptions & { readonly plugin: string; readonly config?: unknown; readonly isolation?: IsolationTier }) => Promise<StartOutcome>
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
          ...(options.isolation !== undefined ? { startOptions: { isolation: options.isolation } } : {}),
        }).pipe(Scope.extend(scope), Effect.either),
      )
      if (Either.isLeft(started)) {
        await closeScope(scope)
        return { ok: false, failure: started.left }
      }
      const instance = started.right
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
                    : {
                        ok: false,
                        failure: result.left,
                        job: toJobError(result.left, { plugin: instance.plugin, instance: instance.id, time: new Date() }),
                      },
              ),
            ),
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
