// Worker benchmarks: each number is set against a raw baseline measured in the same run.
// Standalone: `node bench/worker.mjs` (after `npm run build`).
import { fork, spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import http from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { Effect, Layer } from "effect"
import {
  describePlugin,
  spawnWorkerProcess,
  HashingLive,
  measureTree,
  planIsolation,
  PluginFilesLive,
  ProcessSpawnerLive,
  runtimeReadPaths,
  sandboxFor,
  startInstance,
  TreeDigestVerifierLive,
  workerBundled,
  workerEntryPath,
} from "@plinth/runtime"

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const rssKiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1])
/** A process and its descendants: an OS-tier worker is bwrap, the namespace's init and Node. */
const processTree = (pid) => {
  const children = readdirSync(`/proc/${pid}/task`).flatMap((task) => {
    try {
      return readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").split(/\s+/).filter((c) => c !== "").map(Number)
    } catch {
      return []
    }
  })
  return [pid, ...children.flatMap(processTree)]
}
const treeRssKiB = (pid) => processTree(pid).reduce((sum, p) => sum + rssKiB(p), 0)

const rawChildSource = `process.on("message", (m) => process.send(m)); process.on("disconnect", () => process.exit(0)); process.send("ready")`
const httpChildSource = `import http from "node:http"
const server = http.createServer((req, res) => { const c = []; req.on("data", (d) => c.push(d)); req.on("end", () => res.end(Buffer.concat(c))) })
server.keepAliveTimeout = 60000
server.listen(0, "127.0.0.1", () => process.send(server.address().port)); process.on("disconnect", () => process.exit(0))`
// The raw cost of moving JSON between two processes: length-prefixed JSON frames over a socketpair
// (the child's fd 3), parsed and re-serialized by the child, which is what a worker's channel does.
// Chunks are joined once a whole frame has arrived (never per read).
const frames = (onFrame) => {
  let parts = [], size = 0, need = -1
  return (chunk) => {
    parts.push(chunk)
    size += chunk.length
    for (;;) {
      if (need < 0 && size >= 4) {
        if (parts[0].length < 4) parts = [Buffer.concat(parts, size)]
        need = 4 + parts[0].readUInt32BE(0)
      }
      if (need < 0 || size < need) return
      const all = parts.length === 1 ? parts[0] : Buffer.concat(parts, size)
      const text = all.toString("utf8", 4, need)
      const rest = all.subarray(need)
      parts = rest.length > 0 ? [rest] : []
      size = rest.length
      need = -1
      onFrame(text)
    }
  }
}
const frameOf = (text) => {
  const out = Buffer.allocUnsafe(4 + Buffer.byteLength(text))
  out.writeUInt32BE(out.length - 4, 0)
  out.write(text, 4)
  return out
}
const framedChildSource = `import { Socket } from "node:net"
const frames = ${frames}
const frameOf = ${frameOf}
const socket = new Socket({ fd: 3, readable: true, writable: true })
socket.on("data", frames((text) => socket.write(frameOf(JSON.stringify(JSON.parse(text))))))
socket.on("end", () => process.exit(0))`
const pluginSource = `import { Effect, Schema } from "effect"
import { definePlugin } from "@plinth/domain"
export default definePlugin({ config: Schema.Struct({}), actions: ({ action }) => ({
  echo: action({ description: "echo", input: Schema.Struct({ text: Schema.String }), output: Schema.Struct({ text: Schema.String }), handler: (input) => Effect.succeed(input) }),
}) })`

// Raw children get the same empty environment a worker gets: variables such as
// NODE_EXTRA_CA_CERTS make every Node start slower, and a baseline that pays for
// them while the worker does not would flatter the worker.
const forkRaw = (file, serialization = "json") =>
  new Promise((resolve) => {
    const child = fork(file, [], { serialization, env: {}, stdio: ["ignore", "ignore", "inherit", "ipc"] })
    child.once("message", (m) => resolve({ child, first: m }))
  })

const spawnFramed = (file) => {
  const child = spawn(process.execPath, [file], { env: {}, stdio: ["ignore", "ignore", "inherit", "pipe"] })
  const socket = child.stdio[3]
  const pending = []
  socket.on("data", frames((text) => pending.shift()?.(JSON.parse(text))))
  const call = (input) => new Promise((resolve) => {
    pending.push(resolve)
    socket.write(frameOf(JSON.stringify({ input })))
  })
  return { call, stop: () => socket.end() }
}

const echoClient = (child) => {
  const pending = new Map()
  let next = 0
  child.on("message", (m) => {
    const resolve = pending.get(m.id)
    pending.delete(m.id)
    resolve?.(m)
  })
  return (input) => new Promise((resolve) => { const id = next++; pending.set(id, resolve); child.send({ id, input }) })
}

const roundTrips = async (call, n) => {
  for (let i = 0; i < 200; i++) await call({ text: "hi" })
  const samples = []
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    await call({ text: "hi" })
    samples.push(performance.now() - t)
  }
  return median(samples)
}

/** Microseconds of this process's CPU (user + system) per sequential call. */
const hostCpuPerCall = async (call, n) => {
  for (let i = 0; i < 200; i++) await call({ text: "hi" })
  const before = process.cpuUsage()
  for (let i = 0; i < n; i++) await call({ text: "hi" })
  const used = process.cpuUsage(before)
  return (used.user + used.system) / n
}

const throughput = async (call, total, inFlight = 64) => {
  let started = 0
  const t = performance.now()
  await Promise.all(Array.from({ length: inFlight }, async () => { while (started < total) { started++; await call({ text: "hi" }) } }))
  return total / ((performance.now() - t) / 1000)
}

export async function runWorkerBench({ rounds = 15, calls = 2000, log = console.log } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "plinth-bench-"))
  try {
    const rawFile = join(dir, "raw.mjs")
    const framedFile = join(dir, "framed.mjs")
    writeFileSync(framedFile, framedChildSource)
    const httpFile = join(dir, "http.mjs")
    writeFileSync(rawFile, rawChildSource)
    writeFileSync(httpFile, httpChildSource)
    const pluginDir = join(dir, "echo")
    mkdirSync(pluginDir)
    writeFileSync(join(pluginDir, "index.js"), pluginSource)
    const bare = { id: "echo", version: "1.0.0", description: "echo", entry: "index.js" }
    writeFileSync(join(pluginDir, "plugin.json"), JSON.stringify(bare))
    const Live = Layer.mergeAll(TreeDigestVerifierLive, ProcessSpawnerLive).pipe(Layer.provideMerge(Layer.mergeAll(HashingLive, PluginFilesLive)))
    const lockNow = () =>
      Effect.runPromise(
        measureTree(pluginDir, "echo").pipe(
          Effect.map(({ entries, digest }) => ({ digest, files: Object.fromEntries(entries.map((e) => [e.path, e.sha256])) })),
          Effect.provide(Live),
        ),
      )
    // The host calls only what the manifest declares: write the declaration into it, as `describe --write` does.
    const declaration = await Effect.runPromise(describePlugin({ plugin: { id: "echo", dir: pluginDir, manifest: bare }, locked: await lockNow() }).pipe(Effect.provide(Live)))
    const manifest = { ...bare, actions: declaration.actions, config: declaration.config }
    writeFileSync(join(pluginDir, "plugin.json"), JSON.stringify(manifest))
    const locked = await lockNow()
    // The same action with schemas that allow anything: what a call costs the host without the output and input checks.
    const unchecked = { ...manifest, actions: { echo: { ...manifest.actions.echo, input: {}, output: {} } } }

    // spawn -> ready (the bootstrap's first message) and spawn -> usable (plugin loaded, first call answered)
    // Per isolation tier (Isolation.ts): the permission tier (through setpriv on Linux) and the OS tier (bubblewrap).
    const tiers = ["permissions", "os"]
    const rawStart = [], rawForUsable = []
    const workerReady = { permissions: [], os: [] }, workerUsable = { permissions: [], os: [] }
    const sandbox = sandboxFor({ permissions: undefined, dataDir: undefined, hostEnv: {} })
    const plans = {}
    for (const tier of tiers) {
      plans[tier] = await Effect.runPromise(planIsolation({ requested: tier, permissions: undefined, readPaths: runtimeReadPaths(), dataDir: undefined }))
    }
    for (let i = 0; i < rounds; i++) {
      let t = performance.now()
      const { child } = await forkRaw(rawFile)
      rawStart.push(performance.now() - t)
      child.disconnect()
      for (const tier of tiers) {
        t = performance.now()
        await new Promise((resolve) => {
          const worker = spawnWorkerProcess({ modulePath: workerEntryPath(), launcher: plans[tier].launcher, execArgv: sandbox.execArgv, env: sandbox.env, cwd: plans[tier].cwd })
          // The first bytes on the channel are the Ready frame.
          worker.onData(() => { workerReady[tier].push(performance.now() - t); worker.kill("SIGKILL"); resolve() })
        })
      }
    }
    for (let i = 0; i < Math.ceil(rounds / 3); i++) {
      let t = performance.now()
      const { child } = await forkRaw(rawFile)
      rawForUsable.push(performance.now() - t)
      child.disconnect()
      for (const tier of tiers) {
        t = performance.now()
        await Effect.runPromise(
          Effect.scoped(
            Effect.flatMap(startInstance({ plugin: { id: "echo", dir: pluginDir, manifest }, locked, drift: "ignore", isolation: tier }), (instance) =>
              Effect.tap(instance.invoke("echo", { text: "hi" }), () => Effect.sync(() => workerUsable[tier].push(performance.now() - t))),
            ),
          ).pipe(Effect.provide(Live)),
        )
      }
    }

    // idle RSS: a freshly loaded worker after a few small calls, next to an idle raw child
    const idle = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const instance = yield* startInstance({ plugin: { id: "echo", dir: pluginDir, manifest }, locked, drift: "ignore" })
          for (let i = 0; i < 100; i++) yield* instance.invoke("echo", { text: "hi" })
          const { child } = yield* Effect.promise(() => forkRaw(rawFile))
          yield* Effect.sleep("1 second")
          const result = { workerRss: treeRssKiB(yield* instance.pid), rawRss: rssKiB(child.pid), tier: instance.isolation }
          child.disconnect()
          return result
        }),
      ).pipe(Effect.provide(Live)),
    )

    // calls
    const { child: raw } = await forkRaw(rawFile)
    const rawCall = echoClient(raw)
    const { child: httpChild, first: port } = await forkRaw(httpFile)
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 })
    const httpCall = (input) => new Promise((resolve, reject) => {
      const body = JSON.stringify(input)
      const request = http.request({ host: "127.0.0.1", port, method: "POST", agent, headers: { "content-length": Buffer.byteLength(body) } }, (response) => {
        const chunks = []
        response.on("data", (d) => chunks.push(d))
        response.on("end", () => resolve(JSON.parse(Buffer.concat(chunks).toString())))
      })
      request.on("error", reject)
      request.end(body)
    })
    const { child: rawAdvanced } = await forkRaw(rawFile, "advanced")
    const framed = spawnFramed(framedFile)
    const results = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const instance = yield* startInstance({ plugin: { id: "echo", dir: pluginDir, manifest }, locked, drift: "ignore" })
          const workerCall = (input) => Effect.runPromise(instance.invoke("echo", input))
          const rawP50 = yield* Effect.promise(() => roundTrips(rawCall, calls))
          const workerP50 = yield* Effect.promise(() => roundTrips(workerCall, calls))
          const httpP50 = yield* Effect.promise(() => roundTrips(httpCall, calls))
          const rawThroughput = yield* Effect.promise(() => throughput(rawCall, calls * 3))
          const workerThroughput = yield* Effect.promise(() => throughput(workerCall, calls * 3))
          const httpThroughput = yield* Effect.promise(() => throughput(httpCall, calls))
          const big = { text: "x".repeat(10 * 1024 * 1024) }
          const rawBig = [], workerBig = [], advancedBig = []
          const advancedCall = echoClient(rawAdvanced)
          for (let i = 0; i < 7; i++) {
            let t = performance.now()
            yield* Effect.promise(() => framed.call(big))
            rawBig.push(performance.now() - t)
            t = performance.now()
            yield* Effect.promise(() => advancedCall(big))
            advancedBig.push(performance.now() - t)
            t = performance.now()
            yield* Effect.promise(() => workerCall(big))
            workerBig.push(performance.now() - t)
          }
          // Host CPU per small call (this process only; the worker is another), with the manifest's
          // schemas checked and with schemas that allow anything, alternating rounds.
          const uncheckedInstance = yield* startInstance({ plugin: { id: "echo", dir: pluginDir, manifest: unchecked }, locked, drift: "ignore" })
          const uncheckedCall = (input) => Effect.runPromise(uncheckedInstance.invoke("echo", input))
          const checkedCpu = [], uncheckedCpu = []
          for (let round = 0; round < 7; round++) {
            uncheckedCpu.push(yield* Effect.promise(() => hostCpuPerCall(uncheckedCall, calls)))
            checkedCpu.push(yield* Effect.promise(() => hostCpuPerCall(workerCall, calls)))
          }
          return {
            rawP50, workerP50, httpP50, rawThroughput, workerThroughput, httpThroughput,
            rawBig: median(rawBig.slice(2)), workerBig: median(workerBig.slice(2)),
            checkedCpu: median(checkedCpu), uncheckedCpu: median(uncheckedCpu), advancedBig: median(advancedBig.slice(2)),
          }
        }),
      ).pipe(Effect.provide(Live)),
    )
    raw.disconnect(); httpChild.disconnect(); rawAdvanced.disconnect(); framed.stop(); agent.destroy()

    const r = (x) => Math.round(x * 100) / 100
    const us = (ms) => `${Math.round(ms * 1000 * 10) / 10} µs`
    const rows = [
      ...tiers.flatMap((tier) => [
        { target: `spawn -> ready, ${tier} tier <= 1.5x raw fork`, measured: `${r(median(workerReady[tier]))} ms vs ${r(median(rawStart))} ms`, ratio: median(workerReady[tier]) / median(rawStart), limit: 1.5, below: true },
        { target: `spawn -> usable (loaded + first call), ${tier} tier <= 1.5x raw fork`, measured: `${r(median(workerUsable[tier]))} ms vs ${r(median(rawForUsable))} ms`, ratio: median(workerUsable[tier]) / median(rawForUsable), limit: 1.5, below: true },
      ]),
      { target: "small round trip p50 <= 2x raw process.send echo", measured: `${us(results.workerP50)} vs ${us(results.rawP50)}`, ratio: results.workerP50 / results.rawP50, limit: 2, below: true },
      { target: "64 in flight >= 0.5x raw echo throughput", measured: `${Math.round(results.workerThroughput)}/s vs ${Math.round(results.rawThroughput)}/s`, ratio: results.workerThroughput / results.rawThroughput, limit: 0.5, below: false },
      { target: "round trip p50 >= 3x faster than HTTP keep-alive", measured: `${us(results.workerP50)} vs ${us(results.httpP50)}`, ratio: results.httpP50 / results.workerP50, limit: 3, below: false },
      { target: "64 in flight >= 3x HTTP keep-alive throughput", measured: `${Math.round(results.workerThroughput)}/s vs ${Math.round(results.httpThroughput)}/s`, ratio: results.workerThroughput / results.httpThroughput, limit: 3, below: false },
      // Values are JSON on every path (one value domain), so the baseline is raw JSON frames over a socketpair;
      // a raw fork with `advanced` serialization (structured clone, not JSON) is shown for reference.
      { target: "10 MiB round trip <= 1.2x raw JSON frames over a socketpair", measured: `${r(results.workerBig)} ms vs ${r(results.rawBig)} ms`, ratio: results.workerBig / results.rawBig, limit: 1.2, below: true },
      { target: "10 MiB round trip, for reference: raw fork (advanced)", measured: `${r(results.workerBig)} ms vs ${r(results.advancedBig)} ms`, ratio: results.workerBig / results.advancedBig, limit: Number.POSITIVE_INFINITY, below: true },
      { target: "host CPU per small call, output+input checked <= 1.1x unchecked", measured: `${us(results.checkedCpu / 1000)} vs ${us(results.uncheckedCpu / 1000)}`, ratio: results.checkedCpu / results.uncheckedCpu, limit: 1.1, below: true },
      { target: `idle worker RSS (${idle.tier} tier, whole sandbox) <= 1.5x raw forked child`, measured: `${Math.round(idle.workerRss / 1024)} MiB vs ${Math.round(idle.rawRss / 1024)} MiB`, ratio: idle.workerRss / idle.rawRss, limit: 1.5, below: true },
    ].map((row) => ({ ...row, ratio: r(row.ratio), met: row.below ? row.ratio <= row.limit : row.ratio >= row.limit }))
    const report = { bundledRuntime: workerBundled(), rows }
    log(`worker runtime: ${workerBundled() ? "bundled (dist/worker-bundle)" : "compiled, unbundled (run npm run build for the bundle)"}`)
    const width = Math.max(...rows.map((row) => row.target.length))
    const measuredWidth = Math.max(...rows.map((row) => row.measured.length))
    log(`${"target".padEnd(width)}  ${"measured (worker vs baseline)".padEnd(measuredWidth)}  ratio  result`)
    for (const row of rows) log(`${row.target.padEnd(width)}  ${row.measured.padEnd(measuredWidth)}  ${String(row.ratio).padStart(5)}  ${row.met ? "met" : "MISSED"}`)
    return report
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  runWorkerBench().then(() => process.exit(0), (error) => { console.error(error); process.exit(1) })
}
