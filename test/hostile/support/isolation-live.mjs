import { Layer } from "effect"
import { HashingLive, PluginFilesLive, ProcessSpawnerLive } from "@plinth/runtime"

export const IsolationTestLive = Layer.mergeAll(HashingLive, PluginFilesLive, ProcessSpawnerLive)
