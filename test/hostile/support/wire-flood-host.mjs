// A host that streams `count` chunks of 1 MiB from a plugin and takes one
// every `delay` ms, sampling its own RSS and watching how far ahead of the
// consumer the plugin got (it reports each chunk it produces as progress);
// prints one JSON line with the figures. Run as its own process (with
// --expose-gc) so that nothing else shares its memory.
//
// The other modes start the same instance (so the heap holds what a host's
// does) but take the same flood without Plinth's stream, to show what the
// rest costs in this host (V8 lets garbage grow in proportion to the live
// heap before it collects):
// - "effect": the chunks from memory, parsed one per pull from the same JSON
//   frame text, taken by the very `Stream.runForEach` consumer of the Plinth
//   mode; no worker, no wire. The floor for that consumer: the test's baseline.
// - "plain": the chunks from memory; plain JavaScript parses one, holds it
//   `delay` ms and lets it go.
// - "bare": a child writes the chunks as length-prefixed JSON frames on a
//   socketpair; a plain loop parses each and takes one every `delay` ms.
// `bench/stream-flood.mjs` runs all four.
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { Chunk, Effect, Layer, Option, Stream } from "effect"
import { HashingLive, PluginFilesLive, ProcessSpawnerLive, startInstance, TreeDigestVerifierLive } from "@plinth/runtime"

const [dir, lockedJson, countArg, delayArg, mode = "plinth"] = process.argv.slice(2)
const count = Number(countArg)
const delay = Number(delayArg)
const manifest = JSON.parse(readFileSync(join(dir, "plugin.json"), "utf8"))
const MiB = 1024 * 1024

const writer = `
const { Socket } = require("node:net")
const socket = new Socket({ fd: 3, readable: true, writable: true })
const block = "x".repeat(1024 * 1024 - 8)
let n = 0
const next = () => {
  while (n < ${count}) {
    n++
    const text = JSON.stringify({ _tag: "Chunk", id: 1, value: String(n).padStart(8, "0") + block })
    const frame = Buffer.allocUnsafe(4 + Buffer.byteLength(text))
    frame.writeUInt32BE(frame.length - 4, 0)
    frame.write(text, 4)
    if (!socket.write(frame)) return socket.once("drain", next)
  }
  socket.end()
}
next()`

/** The n-th chunk's frame text as the worker writes it; each pull of the in-memory modes parses one. */
const block = "x".repeat(MiB - 8)
const frameText = (n) => JSON.stringify({ _tag: "Chunk", id: 1, value: String(n).padStart(8, "0") + block })

/** Samples this process's RSS every 10 ms and on demand; `growthMiB` is the peak over the baseline. */
const rssSampler = () => {
  const baseline = process.memoryUsage().rss
  let peak = baseline
  const sample = () => {
    const rss = process.memoryUsage().rss
    if (rss > peak) peak = rss
  }
  const timer = setInterval(sample, 10)
  return {
    baseline,
    sample,
    peak: () => peak,
    stop: () => clearInterval(timer),
    growthMiB: () => (peak - baseline) / MiB,
  }
}

/** The bare flood: parsed as each frame arrives, at most four frames read ahead (the socket is paused), one taken per `delay` ms. */
const bareFlood = () =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, ["-e", writer], { env: {}, stdio: ["ignore", "inherit", "inherit", "pipe"] })
    const socket = child.stdio[3]
    const rss = rssSampler()
    let parts = []
    let size = 0
    let need = -1
    let taken = 0
    let busy = false
    let ended = false
    let inOrder = true
    const values = []
    const consume = () => {
      if (busy) return
      if (values.length === 0) {
        if (!ended) return socket.resume()
        rss.stop()
        return resolve({ taken, inOrder, growthMiB: rss.growthMiB() })
      }
      const value = values.shift()
      taken++
      if (Number(value.slice(0, 8)) !== taken) inOrder = false
      rss.sample()
      busy = true
      setTimeout(() => {
        busy = false
        consume()
      }, delay)
    }
    socket.on("data", (chunk) => {
      parts.push(chunk)
      size += chunk.length
      for (;;) {
        if (need < 0 && size >= 4) {
          if (parts[0].length < 4) parts = [Buffer.concat(parts, size)]
          need = 4 + parts[0].readUInt32BE(0)
        }
        if (need < 0 || size < need) break
        const all = parts.length === 1 ? parts[0] : Buffer.concat(parts, size)
        values.push(JSON.parse(all.toString("utf8", 4, need)).value)
        const rest = all.subarray(need)
        parts = rest.length > 0 ? [rest] : []
        size = rest.length
        need = -1
      }
      if (values.length >= 4) socket.pause()
      consume()
    })
    socket.on("end", () => {
      ended = true
      consume()
    })
  })

/** The consumer every Effect mode uses: check the order, sample RSS, take `delay` ms. */
const consumer = (state, sample) => (chunk) =>
  Effect.suspend(() => {
    state.taken++
    if (Number(chunk.slice(0, 8)) !== state.taken) state.inOrder = false
    state.maxAhead = Math.max(state.maxAhead, state.produced - state.taken)
    state.bytes += chunk.length
    sample()
    return Effect.sleep(`${delay} millis`)
  })

/** "effect": the chunks from memory through the same `Stream.runForEach` consumer, no wire. */
const effectFlood = Effect.suspend(() => {
  const rss = rssSampler()
  const state = { taken: 0, produced: 0, maxAhead: 0, bytes: 0, inOrder: true }
  const pull = Effect.suspend(() =>
    state.produced >= count ? Effect.fail(Option.none()) : Effect.sync(() => Chunk.of(JSON.parse(frameText(++state.produced)).value)),
  )
  return Stream.runForEach(Stream.fromPull(Effect.succeed(pull)), consumer(state, rss.sample)).pipe(
    Effect.map(() => {
      rss.stop()
      return { taken: state.taken, inOrder: state.inOrder, growthMiB: rss.growthMiB() }
    }),
  )
})

/** "plain": the chunks from memory, one parsed, held `delay` ms and let go at a time, in plain JavaScript. */
const plainFlood = () =>
  new Promise((resolve) => {
    const rss = rssSampler()
    let taken = 0
    let inOrder = true
    const next = () => {
      if (taken === count) {
        rss.stop()
        return resolve({ taken, inOrder, growthMiB: rss.growthMiB() })
      }
      let value = JSON.parse(frameText(taken + 1)).value
      taken++
      if (Number(value.slice(0, 8)) !== taken) inOrder = false
      rss.sample()
      setTimeout(() => {
        value = undefined
        next()
      }, delay)
    }
    next()
  })

const program = Effect.gen(function* () {
  const instance = yield* startInstance({ plugin: { id: manifest.id, dir, manifest }, locked: JSON.parse(lockedJson), drift: "ignore" })
  yield* instance.invoke("ping", {})
  if (mode === "bare") return yield* Effect.promise(bareFlood)
  if (mode === "effect") return yield* effectFlood
  if (mode === "plain") return yield* Effect.promise(plainFlood)
  const rss = rssSampler()
  const heapBaseline = process.memoryUsage().heapUsed
  const state = { taken: 0, produced: 0, maxAhead: 0, bytes: 0, inOrder: true }
  const started = performance.now()
  const onProgress = (report) => void (state.produced = Number(report.message))
  yield* Stream.runForEach(instance.stream("flood", { count }, { onProgress }), consumer(state, rss.sample))
  rss.stop()
  globalThis.gc?.()
  const heapAfterGc = process.memoryUsage().heapUsed
  return {
    taken: state.taken,
    inOrder: state.inOrder,
    maxAhead: state.maxAhead,
    bytesMiB: state.bytes / MiB,
    seconds: (performance.now() - started) / 1000,
    baselineMiB: rss.baseline / MiB,
    peakMiB: rss.peak() / MiB,
    growthMiB: rss.growthMiB(),
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
