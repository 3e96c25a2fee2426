import { Data, Effect, Either, Exit, Layer, Runtime, Scope, Stream } from "effect"
import { JobError, toJobError, type ManagerEvent } from "@plinth/domain"
import { PlinthHost, type PlinthHostOptions } from "./Host.js"
import type { InvokeOptions, StreamOptions } from "./instance/Instance.js"
import {
  PluginManager,
  type CallFailure,
  type ConfigOptions,
  type LoadFailure,
  type LoadInstanceOptions,
  type ManagedInstance,
} from "./manager/PluginManager.js"
import type { InstanceNotLoaded, PluginFailure } from "@plinth/domain"

/*
 * The PluginManager for hosts that do not use Effect: the same manager and
 * stores as `PlinthHost`, behind Promises. As in `createPlinth`, a plugin's
 * fault never rejects a promise: every method resolves with `{ ok: true, … }`
 * or `{ ok: false, failure }` holding the typed failure.
 */

/** What `createManager` can fail with: a rejected plugin or lock, a database that cannot be used. */
export type HostStartFailure = Layer.Layer.Error<ReturnType<typeof PlinthHost>>

export type Outcome<A, E> = ({ readonly ok: true } & A) | { readonly ok: false; readonly failure: E }

export type ManagerCallOutcome =
  | { readonly ok: true; readonly result: unknown }
  | { readonly ok: false; readonly failure: CallFailure; readonly job: JobError }

/** What a manager stream throws from its loop when the call fails (or the instance is disabled or not loaded). */
export class ManagerStreamFailed extends Data.TaggedError("ManagerStreamFailed")<{
  readonly failure: CallFailure
  readonly job: JobError
}> {
  override get message() {
    return this.job.message
  }
}

export interface PlinthManager {
  /** The ids of the verified plugins, sorted. */
  readonly plugins: ReadonlyArray<string>
  readonly load: (plugin: string, options?: LoadInstanceOptions) => Promise<Outcome<{ readonly instance: ManagedInstance }, LoadFailure>>
  readonly unload: (id: string) => Promise<Outcome<object, InstanceNotLoaded>>
  readonly reload: (id: string, config?: unknown, options?: ConfigOptions) => Promise<Outcome<{ readonly instance: ManagedInstance }, LoadFailure | InstanceNotLoaded>>
  /** Checks the config, restarts the instance with it and, for a default instance, persists it; a refused config changes nothing. */
  readonly updateConfig: (id: string, config: unknown, options?: ConfigOptions) => Promise<Outcome<{ readonly instance: ManagedInstance }, LoadFailure | InstanceNotLoaded>>
  readonly enable: (id: string) => Promise<Outcome<object, InstanceNotLoaded | PluginFailure>>
  readonly disable: (id: string) => Promise<Outcome<object, InstanceNotLoaded | PluginFailure>>
  readonly reset: (id: string) => Promise<Outcome<object, InstanceNotLoaded | PluginFailure>>
  readonly list: () => Promise<ReadonlyArray<ManagedInstance>>
  readonly get: (id: string) => Promise<Outcome<{ readonly instance: ManagedInstance }, InstanceNotLoaded>>
  readonly execute: (id: string, action: string, input: unknown, options?: InvokeOptions) => Promise<ManagerCallOutcome>
  /**
   * `for await (const item of manager.stream(id, action, input))`: items with
   * backpressure; leaving the loop early cancels the call; a failure throws
   * `ManagerStreamFailed` from the loop.
   */
  readonly stream: (id: string, action: string, input: unknown, options?: StreamOptions) => AsyncIterable<unknown>
  readonly prefetch: (plugin: string, count: number) => Promise<Outcome<object, LoadFailure>>
  /** Lifecycle events from the moment `events()` is called; leave the loop to stop listening. */
  readonly events: () => AsyncIterable<ManagerEvent>
  /** Stops every worker, then flushes and closes the stores. Safe to call twice. */
  readonly close: () => Promise<void>
}

const outcome = <A extends object, E>(result: Either.Either<A, E>): Outcome<A, E> =>
  Either.isRight(result) ? { ok: true, ...result.right } : { ok: false, failure: result.left }

/**
 * Verifies every plugin, opens the stores under `dataDir` and resolves with
 * the manager (`{ ok: true, manager }`), or with the failure that stopped it
 * (`{ ok: false, failure }`: a PluginRejected, StoreUnavailable, StoreSchemaMismatch).
 */
export const createManager = async (
  options: PlinthHostOptions,
): Promise<{ readonly ok: true; readonly manager: PlinthManager } | { readonly ok: false; readonly failure: HostStartFailure }> => {
  const scope = Effect.runSync(Scope.make())
  const built = await Effect.runPromise(Layer.toRuntime(PlinthHost(options)).pipe(Scope.extend(scope), Effect.either))
  if (Either.isLeft(built)) {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    return { ok: false, failure: built.left }
  }
  const runtime = built.right
  const run = Runtime.runPromise(runtime)
  const manager = Runtime.runSync(runtime)(PluginManager)
  const jobOf = (id: string, failure: CallFailure): JobError => {
    const context = { plugin: "plugin" in failure ? failure.plugin : id, instance: id, time: new Date() }
    // The manager's own refusals are the caller's to fix: input, not retriable (ManagerErrors.ts).
    return failure._tag === "InstanceNotLoaded" || failure._tag === "PluginDisabled"
      ? new JobError({ category: "input", tag: failure._tag, message: failure.message, retriable: false, ...context })
      : toJobError(failure, context)
  }
  const toInstance = (instance: ManagedInstance) => ({ instance })
  let closing: Promise<void> | undefined

  return {
    ok: true,
    manager: {
      plugins: manager.plugins,
      load: (plugin, loadOptions) => run(Effect.either(Effect.map(manager.load(plugin, loadOptions), toInstance))).then(outcome),
      unload: (id) => run(Effect.either(Effect.as(manager.unload(id), {}))).then(outcome),
      reload: (id, config, configOptions) => run(Effect.either(Effect.map(manager.reload(id, config, configOptions), toInstance))).then(outcome),
      updateConfig: (id, config, configOptions) =>
        run(Effect.either(Effect.map(manager.updateConfig(id, config, configOptions), toInstance))).then(outcome),
      enable: (id) => run(Effect.either(Effect.as(manager.enable(id), {}))).then(outcome),
      disable: (id) => run(Effect.either(Effect.as(manager.disable(id), {}))).then(outcome),
      reset: (id) => run(Effect.either(Effect.as(manager.reset(id), {}))).then(outcome),
      list: () => run(manager.list),
      get: (id) => run(Effect.either(Effect.map(manager.get(id), toInstance))).then(outcome),
      execute: (id, action, input, invokeOptions) =>
        run(
          manager.execute(id, action, input, invokeOptions).pipe(
            Effect.match({
              onSuccess: (result): ManagerCallOutcome => ({ ok: true, result }),
              onFailure: (failure): ManagerCallOutcome => ({ ok: false, failure, job: jobOf(id, failure) }),
            }),
          ),
        ),
      // The iterator's `return()` (run by `break`) interrupts the pulling fiber, which cancels the call in the worker.
      stream: (id, action, input, streamOptions) =>
        Stream.toAsyncIterableRuntime(
          manager.stream(id, action, input, streamOptions).pipe(Stream.mapError((failure) => new ManagerStreamFailed({ failure, job: jobOf(id, failure) }))),
          runtime,
        ),
      prefetch: (plugin, count) => run(Effect.either(Effect.as(manager.prefetch(plugin, count), {}))).then(outcome),
      // Subscribed at once, so no event between this call and the loop's first pull is missed.
      events: () => {
        const subscription = Runtime.runSync(runtime)(Scope.make())
        const queue = Runtime.runSync(runtime)(Scope.extend(manager.subscribe, subscription))
        return Stream.toAsyncIterableRuntime(Stream.fromQueue(queue).pipe(Stream.ensuring(Scope.close(subscription, Exit.void))), runtime)
      },
      close: () => (closing ??= Effect.runPromise(Scope.close(scope, Exit.void))),
    },
  }
}
