import * as NodeContext from "@effect/platform-node/NodeContext"
import { Layer } from "effect"
import { HashingLive } from "./hashing/Hashing.js"
import { LockStoreLive } from "./loading/LockStore.js"
import { PluginFilesLive } from "./loading/PluginFiles.js"
import { InProcessModuleLoaderLive } from "./loading/PluginModuleLoader.js"
import { TreeDigestVerifierLive } from "./loading/PluginVerifier.js"
import { RegistryLive } from "./loading/Registry.js"
import { ProcessSpawnerLive } from "./instance/ProcessSpawner.js"

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
