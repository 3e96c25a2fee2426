// A host that streams `count` chunks of 1 MiB from a plugin and takes one
// every `delay` ms, sampling its own RSS and watching how far ahead of the
// consumer the plugin got (it reports each chunk it produces as progress);
// prints one JSON line with the figures. Run as its own process (with
// --expose-gc) so that nothing else shares its memory.
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { Effect, Layer, Stream } from "effect"
import { HashingLive, PluginFilesLive, ProcessSpawnerLive, startInstance, TreeDigestVerifierLive } from "@plinth/runtime"

const [dir, lockedJson, countArg, delayArg] = process.argv.slice(2)
const count = Number(countArg)
const delay = Number(delayArg)
const manifest = JSON.parse(readFileSync(join(dir, "plugin.json"), "utf8"))
const MiB = 1024 * 1024

const program = Effect.gen(function* () {
  const instance = yield* startInstance({ plugin: { id: manifest.id, dir, manifest }, locked: JSON.parse(lockedJson), drift: "ignore" })
  yield* instance.invoke("ping", {})
  const baseline = process.memoryUsage().rss
  let peak = baseline
  const sample = () => {
    const rss = process.memoryUsage().rss
    if (rss > peak) peak = rss
  }
  const sampler = setInterval(sample, 10)
  const heapBaseline = process.memoryUsage().heapUsed
  let taken = 0
  let produced = 0
  let maxAhead = 0
  let bytes = 0
  let inOrder = true
  const started = performance.now()
  const onProgress = (report) => void (produced = Number(report.message))
  yield* Stream.runForEach(instance.stream("flood", { count }, { onProgress }), (chunk) =>
    Effect.suspend(() => {
      taken++
      if (Number(chunk.slice(0, 8)) !== taken) inOrder = false
      maxAhead = Math.max(maxAhead, produced - taken)
      bytes += chunk.length
      sample()
      return Effect.sleep(`${delay} millis`)
    }),
  )
  clearInterval(sampler)
  globalThis.gc?.()
  const heapAfterGc = process.memoryUsage().heapUsed
  return {
    taken,
    inOrder,
    maxAhead,
    bytesMiB: bytes / MiB,
    seconds: (performance.now() - started) / 1000,
    baselineMiB: baseline / MiB,
    peakMiB: peak / MiB,
    growthMiB: (peak - baseline) / MiB,
    heapRetainedMiB: (heapAfterGc - heapBaseline) / MiB,
  }
})

Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(Layer.mergeAll(TreeDigestVerifierLive, ProcessSpawnerLive).pipe(Layer.provideMerge(Layer.mergeAll(HashingLive, PluginFilesLive)))))).then(
  (result) => {
    console.log(JSON.stringify(result))
    process.exit(0)
  },
  (error) => {
    console.error(String(error))
    process.exit(1)
  },
)
