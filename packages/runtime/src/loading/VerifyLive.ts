import * as NodePath from "@effect/platform-node/NodePath"
import { Layer } from "effect"
import { HashingLive } from "../hashing/Hashing.js"
import { LockStoreReadOnly } from "./LockStore.js"
import { PluginFilesLive } from "./PluginFiles.js"
import { TreeDigestVerifierLive } from "./PluginVerifier.js"

/**
 * What `discoverAndVerify` needs and no more: a lock store that reads, the
 * verifier, hashing, the plugin walk and paths (no FileSystem service: these
 * read synchronously). A command that only verifies (`plinth plugins
 * verify`) is built on this rather than `PlinthLive`, so that it neither opens
 * a terminal on stdin (NodeContext's Terminal) nor loads what starting and
 * loading plugins needs: at start-up every module and layer is time (ADR 0018).
 * A module of its own, apart from `Layers.ts`, for the same reason.
 */
export const VerifyLive = Layer.mergeAll(TreeDigestVerifierLive, LockStoreReadOnly).pipe(
  Layer.provideMerge(Layer.mergeAll(HashingLive, PluginFilesLive, NodePath.layer)),
)
