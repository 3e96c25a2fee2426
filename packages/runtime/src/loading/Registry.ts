import { Context, Data, Effect, Layer, Ref } from "effect"
import type { Digest, PluginId, PluginManifest } from "@plinth/domain"

export interface RegisteredPlugin {
  readonly id: PluginId
  readonly dir: string
  readonly manifest: PluginManifest
  readonly digest: Digest
  readonly module: unknown
}

export class DuplicatePlugin extends Data.TaggedError("DuplicatePlugin")<{ readonly plugin: string }> {
  override get message() {
    return `plugin '${this.plugin}' is already loaded in this registry; reset it before loading again`
  }
}

/** The plugins a host has loaded: deterministic (insertion order), resettable, refusing duplicate ids. */
export class Registry extends Context.Tag("@plinth/runtime/Registry")<
  Registry,
  {
    /** Registers all or none. */
    readonly registerAll: (plugins: ReadonlyArray<RegisteredPlugin>) => Effect.Effect<void, DuplicatePlugin>
    readonly list: Effect.Effect<ReadonlyArray<RegisteredPlugin>>
    readonly get: (id: string) => Effect.Effect<RegisteredPlugin | undefined>
    readonly has: (id: string) => Effect.Effect<boolean>
    readonly reset: Effect.Effect<void>
  }
>() {}

export const makeRegistry = Effect.gen(function* () {
  const state = yield* Ref.make<ReadonlyMap<string, RegisteredPlugin>>(new Map())
  return Registry.of({
    registerAll: (plugins) =>
      Ref.modify(state, (current) => {
        const next = new Map(current)
        for (const plugin of plugins) {
          if (next.has(plugin.id)) return [new DuplicatePlugin({ plugin: plugin.id }), current] as const
          next.set(plugin.id, plugin)
        }
        return [undefined, next] as const
      }).pipe(Effect.flatMap((duplicate) => (duplicate === undefined ? Effect.void : Effect.fail(duplicate)))),
    list: Effect.map(Ref.get(state), (m) => [...m.values()]),
    get: (id) => Effect.map(Ref.get(state), (m) => m.get(id)),
    has: (id) => Effect.map(Ref.get(state), (m) => m.has(id)),
    reset: Ref.set(state, new Map()),
  })
})

export const RegistryLive = Layer.effect(Registry, makeRegistry)
