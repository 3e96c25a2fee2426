import * as NodePath from "@effect/platform-node/NodePath"
import { Context, Effect, Layer } from "effect"
import { Hashing, hashingService } from "../hashing/Hashing.js"
import { LockStore, readOnlyLockStore } from "./LockStore.js"
import { PluginFiles, pluginFilesService } from "./PluginFiles.js"
import { makeTreeDigestVerifier, PluginVerifier } from "./PluginVerifier.js"

/**
 * What `discoverAndVerify` needs and no more: a lock store that reads, the
 * verifier, hashing, the plugin walk and paths (no FileSystem service: these
 * read synchronously). A command that only verifies (`plinth plugins
 * verify`) is built on this rather than `PlinthLive`, so that it neither opens
 * a terminal on stdin (NodeContext's Terminal) nor loads what starting and
 * loading plugins needs: at start-up every module and layer is time (ADR 0018).
 * A module of its own, apart from `Layers.ts`, for the same reason; and one
 * context built in one step rather than a merge of layers, which Effect builds
 * in forked fibers (~3 ms more at start).
 */
export const VerifyLive = Layer.effectContext(
  Effect.gen(function* () {
    const services = Context.make(Hashing, hashingService).pipe(
      Context.add(PluginFiles, pluginFilesService),
      Context.add(LockStore, readOnlyLockStore),
    )
    const verifier = yield* Effect.provide(makeTreeDigestVerifier, services)
    return Context.add(services, PluginVerifier, verifier)
  }),
).pipe(Layer.provideMerge(NodePath.layer))
