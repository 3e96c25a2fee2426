// A host that loads the same plugins in-process again and again, each time into
// a fresh registry, and reports what happened as one JSON line on stdout.
// Usage: node inprocess-host.mjs <root> <lock> <trials> <verified|disk>
// "disk" is the loader before ADR 14 (import from the file on disk once
// verified), kept as the control that shows the race is real.
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { Effect, Layer, ManagedRuntime } from "effect"
import { PluginImportError } from "@plinth/domain"
import { loadPlugins, PlinthLive, PluginModuleLoader, Registry, RegistryLive } from "@plinth/runtime"

const [root, lock, trialsText, mode] = process.argv.slice(2)
const trials = Number(trialsText)

let trial = 0
const diskLoader = Layer.succeed(PluginModuleLoader, {
  load: (plugin) =>
    Effect.tryPromise({
      // A query per trial so the entry is read again each time, as a fresh process would.
      try: () => import(`${pathToFileURL(join(plugin.dir, plugin.manifest.entry)).href}?trial=${trial}`),
      catch: (cause) => new PluginImportError({ plugin: plugin.id, detail: String(cause) }),
    }),
})
const runtime = ManagedRuntime.make(mode === "disk" ? Layer.merge(PlinthLive, diskLoader) : PlinthLive)

const outcomes = { good: 0, mismatch: 0, other: {} }
const started = performance.now()
for (; trial < trials; trial++) {
  const result = await runtime.runPromise(
    Effect.either(
      Effect.gen(function* () {
        yield* loadPlugins({ root, lock })
        return yield* Effect.flatMap(Registry, (registry) => registry.list)
      }).pipe(Effect.provide(RegistryLive)),
    ),
  )
  if (result._tag === "Right") {
    const versions = result.right.map((plugin) => plugin.module.default.version)
    const key = versions.every((v) => v === "good") ? "good" : `loaded:${versions.join(",")}`
    if (key === "good") outcomes.good++
    else outcomes.other[key] = (outcomes.other[key] ?? 0) + 1
  } else if (result.left._tag === "IntegrityMismatch") {
    outcomes.mismatch++
  } else {
    const key = `${result.left._tag}: ${result.left.detail ?? ""}`
    outcomes.other[key] = (outcomes.other[key] ?? 0) + 1
  }
}
const elapsedMs = performance.now() - started
await runtime.dispose()
// Exit once the line is out: the hashing pool's idle timer would keep the process for seconds.
process.stdout.write(JSON.stringify({ ...outcomes, evilRuns: globalThis.plinthEvilRuns ?? 0, trials, elapsedMs }) + "\n", () => process.exit(0))
