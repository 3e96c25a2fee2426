import { NodeContext } from "@effect/platform-node"
import { Layer } from "effect"
import { HashingLive } from "./Hashing.js"
import { LockStoreLive } from "./LockStore.js"
import { PluginFilesLive } from "./PluginFiles.js"
import { InProcessModuleLoaderLive } from "./PluginModuleLoader.js"
import { TreeDigestVerifierLive } from "./PluginVerifier.js"
import { RegistryLive } from "./Registry.js"

const Foundations = Layer.mergeAll(HashingLive, PluginFilesLive, NodeContext.layer)

/** Everything `loadPlugins` needs, wired to the real file system, hashing and an in-process module loader. */
export const PlinthLive = Layer.mergeAll(
  TreeDigestVerifierLive,
  LockStoreLive,
  InProcessModuleLoaderLive,
  RegistryLive,
).pipe(Layer.provideMerge(Foundations))
