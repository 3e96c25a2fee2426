// A host that streams `count` chunks of 1 MiB from a plugin and takes one
// every `delay` ms, sampling its own RSS and watching how far ahead of the
// consumer the plugin got (it reports each chunk it produces as progress);
// prints one JSON line with the figures. Run as its own process (with
// --expose-gc) so that nothing else shares its memory.
//
// With mode "bare" it starts the same instance (so its heap holds what a
// host's does) but takes the same flood without Plinth: a child writes the
// chunks as length-prefixed JSON frames on a socketpair, a plain loop parses
// each and takes one every `delay` ms. V8 lets garbage grow in proportion to
// the live heap before it collects, so that is the baseline the stream is
// measured against.
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { Effect, Layer, Stream } from "effect"
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

/** The bare flood: parsed as each frame arrives, at most four frames read ahead (the socket is paused), one taken per `delay` ms. */
const bareFlood = () =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, ["-e", writer], { env: {}, stdio: ["ignore", "inherit", "inherit", "pipe"] })
    const socket = child.stdio[3]
    const baseline = process.memoryUsage().rss
    let peak = baseline
    const sample = () => void (peak = Math.max(peak, process.memoryUsage().rss))
    const sampler = setInterval(sample, 10)
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
        clearInterval(sampler)
        return resolve({ taken, inOrder, growthMiB: (peak - baseline) / MiB })
      }
      const value = values.shift()
      taken++
      if (Number(value.slice(0, 8)) !== taken) inOrder = false
      sample()
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

const program = Effect.gen(function* () {
  const instance = yield* startInstance({ plugin: { id: manifest.id, dir, manifest }, locked: JSON.parse(lockedJson), drift: "ignore" })
  yield* instance.invoke("ping", {})
  if (mode === "bare") return yield* Effect.promise(bareFlood)
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
