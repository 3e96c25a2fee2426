import { Effect, Either, ManagedRuntime } from "effect"
import type { LoadReport, PluginRejected } from "@plinth/domain"
import { PlinthLive } from "./Layers.js"
import { loadPlugins, type LoadOptions } from "./Loader.js"
import { Registry, type DuplicatePlugin, type RegisteredPlugin } from "./Registry.js"

export type LoadOutcome =
  | { readonly ok: true; readonly report: LoadReport }
  | { readonly ok: false; readonly rejection: PluginRejected | DuplicatePlugin }

/**
 * A Promise facade for hosts that do not use Effect. One instance owns one
 * registry; `dispose` releases its resources.
 */
export interface Plinth {
  /** Resolves with the outcome; a rejection is a value here, never a thrown string. */
  readonly loadPlugins: (options: LoadOptions) => Promise<LoadOutcome>
  readonly plugins: () => Promise<ReadonlyArray<RegisteredPlugin>>
  readonly reset: () => Promise<void>
  readonly dispose: () => Promise<void>
}

export const createPlinth = (): Plinth => {
  const runtime = ManagedRuntime.make(PlinthLive)
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
    dispose: () => runtime.dispose(),
  }
}
