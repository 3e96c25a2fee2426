import { Layer } from "effect"
import { HashingLive, PluginFilesLive, ProcessSpawnerLive, TreeDigestVerifierLive } from "@plinth/runtime"

export const IsolationTestLive = Layer.mergeAll(TreeDigestVerifierLive, ProcessSpawnerLive).pipe(Layer.provideMerge(Layer.mergeAll(HashingLive, PluginFilesLive)))
