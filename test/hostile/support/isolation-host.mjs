// A host in its own process: starts one plugin in the tier given, calls an
// action without waiting for it, prints the worker's pid, then waits to be killed.
import { Effect, Layer } from "effect"
import { HashingLive, PluginFilesLive, ProcessSpawnerLive, TreeDigestVerifierLive, startInstance } from "@plinth/runtime"

const { plugin, locked, tier, action } = JSON.parse(process.argv[2])
const program = Effect.gen(function* () {
  const instance = yield* startInstance({ plugin, locked, drift: "ignore", isolation: tier })
  yield* Effect.fork(instance.invoke(action, {}))
  // Long enough for the call to reach plugin code (and, say, block its event loop).
  yield* Effect.sleep("300 millis")
  console.log(`calling ${yield* instance.pid}`)
  yield* Effect.never
})
Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(Layer.mergeAll(TreeDigestVerifierLive, ProcessSpawnerLive).pipe(Layer.provideMerge(Layer.mergeAll(HashingLive, PluginFilesLive)))))).catch((error) => {
  console.error(String(error))
  process.exit(1)
})
