import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import { Layer } from "effect"
import { HashingLive } from "../hashing/Hashing.js"
import { LockStoreLive } from "./LockStore.js"
import { PluginFilesLive } from "./PluginFiles.js"
import { TreeDigestVerifierLive } from "./PluginVerifier.js"

/**
 * What `discoverAndVerify` needs and no more: the lock store, the verifier,
 * hashing and the file system. A command that only verifies (`plinth plugins
 * verify`) is built on this rather than `PlinthLive`, so that it neither opens
 * a terminal on stdin (NodeContext's Terminal) nor loads what starting and
 * loading plugins needs: at start-up every module and layer is time (ADR 0018).
 * A module of its own, apart from `Layers.ts`, for the same reason.
 */
export const VerifyLive = Layer.mergeAll(TreeDigestVerifierLive, LockStoreLive).pipe(
  Layer.provideMerge(Layer.mergeAll(HashingLive, PluginFilesLive, NodeFileSystem.layer, NodePath.layer)),
)
