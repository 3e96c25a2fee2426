import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
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

/**
 * What `discoverAndVerify` needs and no more: the lock store, the verifier,
 * hashing and the file system. A command that only verifies (`plinth plugins
 * verify`) is built on this, not on `PlinthLive`, so that it does not open a
 * terminal on stdin (NodeContext's Terminal) or set up what starting and
 * loading plugins needs: at start-up every layer built is time (ADR 0018).
 */
export const VerifyLive = Layer.mergeAll(TreeDigestVerifierLive, LockStoreLive).pipe(
  Layer.provideMerge(Layer.mergeAll(HashingLive, PluginFilesLive, NodeFileSystem.layer, NodePath.layer)),
)
