import * as NodeContext from "@effect/platform-node/NodeContext"
import { Layer } from "effect"
import { HashingLive } from "./Hashing.js"
import { LockStoreLive } from "./LockStore.js"
import { PluginFilesLive } from "./PluginFiles.js"
import { InProcessModuleLoaderLive } from "./PluginModuleLoader.js"
import { TreeDigestVerifierLive } from "./PluginVerifier.js"
import { RegistryLive } from "./Registry.js"
import { ProcessSpawnerLive } from "./worker/ProcessSpawner.js"

const Foundations = Layer.mergeAll(HashingLive, PluginFilesLive, NodeContext.layer)

/**
 * Everything `loadPlugins` and worker instances need, wired to the real file
 * system, hashing, an in-process module loader and a forking process spawner.
 */
export const PlinthLive = Layer.mergeAll(
  TreeDigestVerifierLive,
  ProcessSpawnerLive,
  LockStoreLive,
  InProcessModuleLoaderLive,
  RegistryLive,
).pipe(Layer.provideMerge(Foundations))
