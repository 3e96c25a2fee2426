// The demo host: verifies and loads the example plugins through the public API,
// runs them in sandboxed worker processes, shows the sandbox refusing an escape,
// runs many instances under the PluginManager over one data directory (configs
// that survive a restart, a secret that never shows), then shows what a user
// sees when one byte of a plugin changes after review.
import { randomUUID } from "node:crypto"
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, relative } from "node:path"
import { Console, Effect, Either, Layer, Queue, Redacted, Stream } from "effect"
import { explainRejection, exitCodeFor, toJobError } from "@plinth/domain"
import {
  createManager,
  describeLocalPlugin,
  discoverAndVerify,
  JobQueue,
  JobQueueLive,
  loadPlugins,
  lockPlugins,
  PlinthHost,
  PlinthLive,
  PluginManager,
  Registry,
  SecretStore,
  SecretStoreLive,
  startInstance,
} from "@plinth/runtime"

const here = import.meta.dirname
const root = join(here, "plugins")
const lock = join(here, "..", "PLUGINS.lock")
const shown = (path) => relative(process.cwd(), path) || "."

// Everything the demo prints also goes here, so that it can show a secret never appeared in it.
const printed = []
const log = console.log.bind(console)
console.log = (...parts) => {
  printed.push(parts.join(" "))
  log(...parts)
}

const heading = (text) => console.log(`\n== ${text}`)
const show = (value) => JSON.stringify(value)

heading(`Verifying and loading ${shown(root)} against ${shown(lock)}`)
const report = await Effect.runPromise(
  Effect.gen(function* () {
    const loaded = yield* loadPlugins({ root, lock })
    const registered = yield* Effect.flatMap(Registry, (r) => r.list)
    return { loaded, registered }
  }).pipe(Effect.provide(PlinthLive)),
)
console.log(`loaded ${report.loaded.loaded.length} of ${report.loaded.totalWalked} plugin folders:`)
for (const plugin of report.registered) {
  const actions = Object.keys(plugin.module.default?.actions ?? {}).join(", ")
  console.log(`  ${plugin.id}@${plugin.manifest.version}  ${plugin.digest}  actions: ${actions}`)
}

heading("Running the plugins in sandboxed worker processes")
const workerPids = []
await Effect.runPromise(
  Effect.scoped(
    Effect.gen(function* () {
      const verified = yield* discoverAndVerify({ root, lock })
      const start = (id, config) => {
        const plugin = verified.discovered.find((p) => p.id === id)
        return startInstance({ plugin, locked: verified.lock.plugins[id], config })
      }
      const call = (instance, action, input, options) =>
        instance.invoke(action, input, options).pipe(
          Effect.tap((output) => Console.log(`  ` + `${instance.plugin}.${action}(${show(input)}) -> ${show(output)}`)),
          Effect.catchAll((failure) => {
            const summary = toJobError(failure, { plugin: instance.plugin, instance: instance.id, time: new Date() })
            return Console.log(`  ` + 
              `${instance.plugin}.${action}(${show(input)}) failed: ${failure._tag} [${summary.category}, ${summary.retriable ? "retriable" : "not retriable"}] ${summary.message.replaceAll("\n", "\n      ")}`,
            )
          }),
        )

      const greeter = yield* start("greeter", { greeting: "Welcome" })
      const textTools = yield* start("text-tools")
      const wordCount = yield* start("word-count")
      const showcase = yield* start("showcase", { greeting: "Hi" })
      // case-tools imports change-case, shipped in its own node_modules/ and pinned by the lock.
      const caseTools = yield* start("case-tools")
      for (const instance of [greeter, textTools, wordCount, showcase, caseTools]) {
        const pid = yield* instance.pid
        workerPids.push(pid)
        console.log(`  ${instance.id} runs in worker pid ${pid} (isolation tier: ${instance.isolation})`)
      }
      yield* call(greeter, "greet", { name: "Ada" })
      yield* call(textTools, "slugify", { text: "Plugins You Can Trust!" })
      yield* call(textTools, "words", { text: "verify all, then import all" })
      yield* call(textTools, "keywords", { text: "a list of the words that matter" })
      yield* call(wordCount, "count", { text: "one two three" })
      yield* call(caseTools, "convert", { text: "plugins you can trust", to: "pascal" })
      yield* call(showcase, "greet", { name: "Grace" })
      yield* call(showcase, "greet", { name: "" })
      yield* call(showcase, "fail", { category: "resource" })
      yield* call(showcase, "slow", { millis: 5000 }, { timeout: "300 millis" })
      yield* call(showcase, "greet", { name: "again, after the timeout" })
      yield* showcase.stream("count", { to: 3, delayMillis: 50 }).pipe(
        Stream.runForEach((item) => Console.log(`  ` + `showcase.count streamed ${show(item)}`)),
      )

      heading("The sandbox refuses an escape")
      yield* call(showcase, "probe", { attempt: "read-outside", target: "/etc/hostname" })
      yield* call(showcase, "probe", { attempt: "spawn", target: "/bin/sh" })
      yield* call(showcase, "probe", { attempt: "env", target: "HOME" })
      // Not even its own folder: the verified bytes came over the channel (assets: context.files).
      yield* call(showcase, "probe", { attempt: "read-own-folder", target: join(root, "showcase", "plugin.json") })
      yield* call(showcase, "probe", { attempt: "kill-host", target: String(process.pid) })
      console.log(
        showcase.isolation === "os"
          ? "  (OS tier: the worker also has no network, no view of host processes, and only Node and the runtime on disk)"
          : "  (permission tier: no bubblewrap here, so the worker CAN reach the network and listeners on this host)",
      )
    }),
  ).pipe(Effect.provide(PlinthLive)),
)
const isRunning = (pid) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
const stillRunning = workerPids.filter(isRunning)
if (stillRunning.length > 0) throw new Error(`workers still running after their scope closed: ${stillRunning.join(", ")}`)
console.log(`the scope closed: all ${workerPids.length} worker processes have exited`)

heading("The PluginManager: many instances over one data directory")
const dataDir = mkdtempSync(join(tmpdir(), "plinth-demo-data-"))
// The operator's token: set in the secret store (as `plinth secrets set vault-demo VAULT_TOKEN` does), never printed.
const token = `demo-token-${randomUUID()}`
try {
  await Effect.runPromise(
    Effect.flatMap(SecretStore, (store) => store.set("vault-demo", "VAULT_TOKEN", Redacted.make(token))).pipe(Effect.provide(SecretStoreLive(dataDir))),
  )
  const called = (manager, id, action, input) =>
    manager.execute(id, action, input).pipe(
      Effect.tap((output) => Console.log(`  ${id}: ${action}(${show(input)}) -> ${show(output)}`)),
      Effect.catchAll((failure) => Console.log(`  ${id}: ${action}(${show(input)}) refused: ${failure._tag}`)),
    )

  // The first manager's life: PlinthHost is the whole wiring (verification, manager, stores, secrets).
  const managedPids = await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const manager = yield* PluginManager
        const events = yield* manager.subscribe
        yield* manager.load("greeter", { config: { greeting: "Welcome" } })
        yield* manager.load("greeter", { instanceId: "greeter-formal", config: { greeting: "Good evening" } })
        for (const instance of yield* manager.list) console.log(`  instance ${instance.id} of ${instance.plugin}: worker pid ${instance.pid}, config ${show(instance.config)}`)
        yield* called(manager, "greeter", "greet", { name: "Ada" })
        yield* called(manager, "greeter-formal", "greet", { name: "Ada" })
        yield* manager.disable("greeter-formal")
        yield* called(manager, "greeter-formal", "greet", { name: "Grace" })
        yield* called(manager, "greeter", "greet", { name: "Grace" })
        yield* manager.enable("greeter-formal")
        yield* called(manager, "greeter-formal", "greet", { name: "Grace" })
        // The default instance's config is persisted in <dataDir>/plinth.db.
        yield* manager.updateConfig("greeter", { greeting: "Ahoy" })
        yield* called(manager, "greeter", "greet", { name: "Linus" })
        yield* manager.load("vault-demo")
        yield* called(manager, "vault-demo", "sign", { message: "ship it" })
        const seen = yield* Queue.takeAll(events)
        console.log(`  events: ${[...seen].map((e) => `${e._tag} ${e.instance}`).join(", ")}`)
        return (yield* manager.list).map((instance) => instance.pid)
      }),
    ).pipe(Effect.provide(PlinthHost({ root, lock, dataDir }))),
  )
  if (managedPids.some(isRunning)) throw new Error("a managed worker is still running after its manager closed")
  console.log(`  the first manager closed: its ${managedPids.length} workers stopped, its stores flushed`)

  // A second life over the same data directory, through the Promise facade.
  const started = await createManager({ root, lock, dataDir })
  if (!started.ok) throw new Error(`the second manager did not start: ${started.failure._tag}`)
  const { manager } = started
  try {
    const loaded = await manager.load("greeter")
    if (!loaded.ok) throw new Error(loaded.failure.message)
    const call = await manager.execute("greeter", "greet", { name: "Ada" })
    console.log(`  after a restart, greeter's config is still ${show(loaded.instance.config)}: greet -> ${show(call.ok ? call.result : call.failure._tag)}`)
  } finally {
    await manager.close()
  }

  // Retry after eviction: a plugin capped at 64 MiB of heap runs out on its first attempt; the
  // manager stops an idle instance of another plugin, reloads the failing one on a fresh worker
  // and retries. (A folder of its own, locked here: the hungry plugin is not one of the examples.)
  const retryRoot = join(dataDir, "retry-demo")
  const hungry = join(retryRoot, "plugins", "hungry")
  mkdirSync(hungry, { recursive: true })
  cpSync(join(root, "greeter"), join(retryRoot, "plugins", "greeter"), { recursive: true })
  writeFileSync(
    join(hungry, "plugin.json"),
    JSON.stringify({
      id: "hungry",
      version: "1.0.0",
      description: "Needs more heap than its cap the first time it runs.",
      entry: "index.js",
      permissions: { dataDir: true },
      resources: { memoryMiB: 64 },
    }),
  )
  writeFileSync(
    join(hungry, "index.js"),
    [
      'import { existsSync, writeFileSync } from "node:fs"',
      'import { Effect, Schema } from "effect"',
      'import { definePlugin } from "@plinth/domain"',
      "export default definePlugin({",
      "  config: Schema.Struct({}),",
      "  actions: ({ action }) => ({",
      '    grow: action({ description: "Builds a large table, once too large.", input: Schema.Struct({}), output: Schema.String,',
      "      handler: (_, { dataDir }) => Effect.sync(() => {",
      '        const tried = existsSync(dataDir + "/tried")',
      '        writeFileSync(dataDir + "/tried", "")',
      "        const table = []",
      "        for (let i = 0; i < (tried ? 4 : 1024); i++) table.push(new Array(128 * 1024).fill(i))",
      "        return `a table of ${table.length} rows`",
      "      }) }),",
      "  }),",
      "})",
      "",
    ].join("\n"),
  )
  const retryLock = join(retryRoot, "PLUGINS.lock")
  // As an author would: `plinth plugins describe hungry --write`, review, then `plinth plugins lock`.
  await Effect.runPromise(describeLocalPlugin({ root: join(retryRoot, "plugins"), id: "hungry", write: true }).pipe(Effect.provide(PlinthLive)))
  await Effect.runPromise(lockPlugins({ root: join(retryRoot, "plugins"), lock: retryLock, check: false }).pipe(Effect.provide(PlinthLive)))
  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const manager = yield* PluginManager
        const events = yield* manager.subscribe
        yield* manager.load("greeter")
        yield* called(manager, "greeter", "greet", { name: "Ada" }) // then idle: the one to evict
        yield* manager.load("hungry")
        yield* called(manager, "hungry", "grow", {})
        const seen = [...(yield* Queue.takeAll(events))].filter((e) => e._tag === "retryStarted" || e._tag === "evicted")
        for (const event of seen) {
          console.log(
            event._tag === "retryStarted"
              ? `  attempt ${event.attempt} of ${event.maxAttempts} after ${event.failure}, on a fresh worker`
              : `  evicted ${event.instance} to make room`,
          )
        }
      }),
    ).pipe(Effect.provide(PlinthHost({ root: join(retryRoot, "plugins"), lock: retryLock, dataDir: join(retryRoot, "data") }))),
  )
  // The retry is in the call history too, which `plinth plugins trace --trace <dataDir>/trace.jsonl` shows.
  const retried = readFileSync(join(retryRoot, "data", "trace.jsonl"), "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line))
    .filter((record) => record.attempt !== undefined)
  for (const record of retried) console.log(`  the call trace records ${record.plugin}.${record.action}, attempt ${record.attempt}: ${record.outcome}`)

  // The token reached the plugin (it signed with it) but nothing printed or stored beside the secret store.
  const written = (dir) =>
    readdirSync(dir, { withFileTypes: true, recursive: true })
      .filter((entry) => entry.isFile() && !join(entry.parentPath ?? entry.path, entry.name).startsWith(join(dataDir, "secrets")))
      .map((entry) => readFileSync(join(entry.parentPath ?? entry.path, entry.name)))
  const leaks = [printed.join("\n"), ...written(dataDir)].filter((text) => text.includes(token)).length
  if (leaks > 0) throw new Error("the secret appeared in the demo's output or its database; this must never happen")
  console.log("  the VAULT_TOKEN secret appears nowhere in this output, nor in the data directory outside its secret store")
} finally {
  rmSync(dataDir, { recursive: true, force: true })
}

heading("The job queue: priorities, cancellation, progress, a journal")
const queueDir = mkdtempSync(join(tmpdir(), "plinth-demo-queue-"))
try {
  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const manager = yield* PluginManager
        const queue = yield* JobQueue
        yield* manager.load("showcase")
        yield* manager.load("greeter")
        const progress = []
        // One job at a time (the default): a slow job holds the queue while the others wait in priority order.
        const slow = yield* queue.submit({ instance: "showcase", action: "slow", input: { millis: 300 } })
        const watched = yield* Effect.fork(
          Stream.runForEach(queue.events(slow), (event) => Effect.sync(() => event._tag === "progressChanged" && progress.push(event.progress))),
        )
        const greet = (name, priority) => queue.submit({ instance: "greeter", action: "greet", input: { name }, priority })
        const submitted = [slow, yield* greet("Low", 0), yield* greet("High", 10), yield* greet("Middle", 5), yield* greet("Dropped", 1)]
        const cancelled = yield* queue.cancel(submitted[4])
        const finished = yield* Effect.forEach(submitted, (id) => queue.wait(id))
        yield* watched.await
        // One at a time, so the order they finished in (the history, newest first) is the order they ran in; their start times can share a millisecond.
        const ran = (yield* queue.history()).filter((job) => submitted.includes(job.id) && job.startedAt !== undefined).reverse()
        console.log(`  submitted 5 jobs; ran in this order: ${ran.map((job) => `${job.action}(${show(job.input)}) priority ${job.priority} -> ${show(job.result)}`).join(", ")}`)
        console.log(`  the slow job reported progress ${progress.map((fraction) => `${Math.round(fraction * 100)}%`).join(" ")}`)
        console.log(`  cancelled while pending: ${cancelled}; it never ran (status ${finished[4].status})`)
        const stats = yield* queue.stats
        console.log(`  stats: ${stats.completed} completed, ${stats.cancelled} cancelled; every job is journaled in the data directory's plinth.db, so a restarted host finds what was pending`)
      }),
    ).pipe(Effect.provide(JobQueueLive().pipe(Layer.provideMerge(PlinthHost({ root, lock, dataDir: queueDir }))))),
  )
  console.log("  watch it live: npx plinth serve --root examples/plugins --lock PLUGINS.lock   (a dashboard at http://127.0.0.1:7717/,")
  console.log("  an HTTP API, and `npx plinth jobs submit|list|show|cancel|watch` from another terminal)")
} finally {
  rmSync(queueDir, { recursive: true, force: true })
}

heading("Tampering: one byte changed in a copy of text-tools")
const scratch = mkdtempSync(join(tmpdir(), "plinth-demo-"))
try {
  cpSync(root, join(scratch, "plugins"), { recursive: true })
  const victim = join(scratch, "plugins", "text-tools", "lib", "words.mjs")
  const bytes = readFileSync(victim)
  bytes[bytes.length - 2] ^= 0x01
  writeFileSync(victim, bytes)
  const outcome = await Effect.runPromise(
    loadPlugins({ root: join(scratch, "plugins"), lock }).pipe(Effect.either, Effect.provide(PlinthLive)),
  )
  if (Either.isRight(outcome)) throw new Error("the tampered copy was accepted; this must never happen")
  const rejection = outcome.left
  console.log(`rejected (${rejection._tag}, exit code ${exitCodeFor(rejection)}); nothing was imported:`)
  console.log(explainRejection(rejection))
} finally {
  rmSync(scratch, { recursive: true, force: true })
}
