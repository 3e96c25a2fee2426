import { execFileSync, spawn } from "node:child_process"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Layer, Stream } from "effect"
import { toJobError } from "@plinth/domain"
import { describePlugin, startInstance, type PluginInstance } from "../src/instance/Instance.js"
import { spawnWorkerProcess, ProcessSpawner } from "../src/instance/ProcessSpawner.js"
import { described, lockOf, makeTempDir, pluginSource, readManifest, removeDir, WorkerTestLive, writePlugin } from "./workerFixtures.js"

const root = makeTempDir("worker")
afterAll(() => removeDir(root))

const showcaseDir = resolve(import.meta.dirname, "../../../examples/plugins/showcase")
const showcase = { id: "showcase", dir: showcaseDir, manifest: readManifest(showcaseDir) }

const writeFixture = (id: string, actions: string, prelude = "", manifest = {}) =>
  writePlugin(root, id, { "index.js": pluginSource(actions, prelude) }, manifest)

/** A fixture whose manifest declares what its code defines: the host calls nothing else. */
const fixture = (id: string, actions: string, prelude = "", manifest = {}) => described(writeFixture(id, actions, prelude, manifest))

const slowAction = `slow: action({ description: "", input: Schema.Struct({ millis: Schema.Number }), output: Schema.Number,
  handler: ({ millis }) => Effect.as(Effect.sleep(Duration.millis(millis)), millis) }),
  spin: action({ description: "", input: Schema.Struct({}), output: Schema.Number, handler: () => Effect.sync(() => { for (;;) {} }) }),
  pid: action({ description: "", input: Schema.Struct({}), output: Schema.Number, handler: () => Effect.sync(() => process.pid) }),`

/**
 * The host-side pid of the worker that answers the next call (a dead one is
 * restarted first). Not the pid plugin code sees: in the OS tier that is a pid
 * inside the worker's own pid namespace (1 or 2), meaningless on the host.
 */
const workerPid = (instance: PluginInstance) => Effect.flatMap(instance.invoke("pid", {}), () => Effect.map(instance.pid, (pid) => pid!))

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe("worker instances", () => {
  it.scopedLive("run the showcase example: config defaults, typed input errors, every error category, streaming with progress", () =>
    Effect.gen(function* () {
      const locked = yield* lockOf(showcase)
      // drift "refuse" is the default: the generated manifest must match the live declaration.
      const instance = yield* startInstance({ plugin: showcase, locked, config: { punctuation: "?" } })
      expect(yield* instance.invoke("greet", { name: "Ann" })).toEqual({ text: "Hello, Ann?" })

      const badInput = yield* Effect.flip(instance.invoke("greet", { name: "" }))
      expect(badInput._tag).toBe("PluginInputError")
      expect(badInput._tag === "PluginInputError" && badInput.fieldsInvalid).toEqual(["name"])

      const categories: Record<string, string> = {}
      for (const category of ["input", "transient", "resource", "fatal", "defect"]) {
        const failure = yield* Effect.flip(instance.invoke("fail", { category }))
        categories[category] = toJobError(failure, { plugin: "showcase", instance: instance.id, time: new Date(0) }).category
      }
      expect(categories).toEqual({ input: "input", transient: "transient", resource: "resource", fatal: "fatal", defect: "fatal" })
      const transient = yield* Effect.flip(instance.invoke("fail", { category: "transient" }))
      expect(toJobError(transient, { plugin: "showcase", instance: instance.id, time: new Date(0) })).toMatchObject({
        retriable: true,
        retryAfterSeconds: 5,
      })

      const progress: Array<number> = []
      const chunks = yield* Stream.runCollect(
        instance.stream("count", { to: 4 }, { onProgress: (report) => progress.push(report.fraction) }),
      )
      expect(Chunk.toArray(chunks)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }])
      expect(progress).toEqual([0.25, 0.5, 0.75, 1])

      const slowProgress: Array<number> = []
      yield* instance.invoke("slow", { millis: 50 }, { onProgress: (r) => slowProgress.push(r.fraction) })
      expect(slowProgress).toHaveLength(10)
      expect(yield* Effect.flip(instance.invoke("nope", {}))).toMatchObject({ _tag: "ActionNotFound", plugin: "showcase", action: "nope" })
    }).pipe(Effect.provide(WorkerTestLive)),
  )

  it.scopedLive("large frames keep their order with small ones; a result JSON cannot carry fails its call typed", () =>
    Effect.gen(function* () {
      const plugin = yield* described(writePlugin(root, "bulk", {
        "index.js": pluginSource(
          `echo: action({ description: "", input: Schema.Struct({ text: Schema.String }), output: Schema.Struct({ text: Schema.String }), handler: (input) => Effect.succeed(input) }),
          size: action({ description: "", input: Schema.Struct({}), output: Schema.Number, handler: () => Effect.succeed(padding.length) }),
          big: action({ description: "", input: Schema.Struct({}), output: Schema.Unknown, handler: () => Effect.succeed(10n) }),
          mixed: streaming({ description: "", input: Schema.Struct({}), output: Schema.String,
            stream: () => Stream.make("x".repeat(300_000), "small", "y".repeat(200_000), "last") }),`,
          `import { padding } from "./padding.js"`,
        ),
        // A module large enough that the Load frame is a large one.
        "padding.js": `export const padding = ${JSON.stringify("p".repeat(200_000))}\n`,
      }))
      const instance = yield* startInstance({ plugin, locked: yield* lockOf(plugin), drift: "ignore" })
      expect(yield* instance.invoke("size", {})).toBe(200_000)
      const large = "z".repeat(1024 * 1024)
      const results = yield* Effect.all(
        [instance.invoke("echo", { text: large }), instance.invoke("echo", { text: "small" }), instance.invoke("echo", { text: large + "!" })],
        { concurrency: "unbounded" },
      )
      expect(results).toEqual([{ text: large }, { text: "small" }, { text: large + "!" }])
      const chunks = Chunk.toArray(yield* Stream.runCollect(instance.stream("mixed", {})))
      expect(chunks).toEqual(["x".repeat(300_000), "small", "y".repeat(200_000), "last"])
      expect(yield* Effect.flip(instance.invoke("big", {}))).toMatchObject({ _tag: "PluginFatalError" })
      expect(yield* instance.invoke("echo", { text: "still alive" })).toEqual({ text: "still alive" })
    }).pipe(Effect.provide(WorkerTestLive)),
  )

  it.scopedLive("a call that overruns its timeout fails typed at once; the stuck worker is killed and the next call runs on a new one", () =>
    Effect.gen(function* () {
      const plugin = yield* fixture("hang-in-call", slowAction)
      const instance = yield* startInstance({ plugin, locked: yield* lockOf(plugin), drift: "ignore", interruptGrace: "300 millis" })
      const firstPid = yield* workerPid(instance)
      const timedOut = yield* Effect.flip(instance.invoke("spin", {}, { timeout: "200 millis" }))
      expect(timedOut).toMatchObject({ _tag: "InvokeTimeout", action: "spin", timeoutMillis: 200 })
      const secondPid = yield* workerPid(instance)
      expect(secondPid).not.toBe(firstPid)
      expect(isAlive(firstPid as number)).toBe(false)
      // A cooperative interruption keeps the worker.
      yield* Effect.flip(instance.invoke("slow", { millis: 60_000 }, { timeout: "100 millis" }))
      expect(yield* workerPid(instance)).toBe(secondPid)
    }).pipe(Effect.provide(WorkerTestLive)),
  )

  it.scopedLive("a stream that stalls fails with InvokeTimeout (idle and overall); the call is cancelled and the worker keeps serving", () =>
    Effect.gen(function* () {
      const plugin = yield* fixture(
        "stalling-stream",
        `${slowAction}
  drip: streaming({ description: "", input: Schema.Struct({ gapMillis: Schema.Number }), output: Schema.Number,
    stream: ({ gapMillis }) => Stream.mapEffect(Stream.range(1, 1000), (n) => Effect.as(Effect.sleep(Duration.millis(gapMillis)), n)) }),`,
      )
      const instance = yield* startInstance({ plugin, locked: yield* lockOf(plugin), drift: "ignore", interruptGrace: "300 millis" })
      const pid = yield* workerPid(instance)
      const idle = yield* Effect.flip(Stream.runDrain(instance.stream("drip", { gapMillis: 60_000 }, { idleTimeout: "150 millis" })))
      expect(idle).toMatchObject({ _tag: "InvokeTimeout", action: "drip", timeoutMillis: 150 })
      const items: Array<unknown> = []
      const overall = yield* Effect.flip(
        Stream.runForEach(instance.stream("drip", { gapMillis: 20 }, { timeout: "300 millis", idleTimeout: "1 second" }), (n) =>
          Effect.sync(() => items.push(n)),
        ),
      )
      expect(overall).toMatchObject({ _tag: "InvokeTimeout", action: "drip", timeoutMillis: 300 })
      expect(items.length).toBeGreaterThan(0)
      // Both streams stopped cooperatively: the same worker answers.
      expect(yield* workerPid(instance)).toBe(pid)
    }).pipe(Effect.provide(WorkerTestLive)),
  )

  it.scopedLive("SIGKILL mid-call fails every call in flight as a resource error naming the signal; the next call restarts", () =>
    Effect.gen(function* () {
      const plugin = yield* fixture("killed", slowAction)
      const instance = yield* startInstance({ plugin, locked: yield* lockOf(plugin), drift: "ignore" })
      const pid = (yield* workerPid(instance)) as number
      const inFlight = yield* Effect.fork(
        Effect.all([0, 1, 2].map(() => Effect.either(instance.invoke("slow", { millis: 60_000 }))), { concurrency: "unbounded" }),
      )
      yield* Effect.sleep("200 millis")
      process.kill(pid, "SIGKILL")
      const outcomes = yield* inFlight.await.pipe(Effect.flatten)
      for (const outcome of outcomes) {
        expect(Either.isLeft(outcome) && outcome.left).toMatchObject({ _tag: "WorkerKilled", signal: "SIGKILL" })
        expect(toJobError(Either.getLeft(outcome).pipe((o) => o._tag === "Some" ? o.value : undefined), { plugin: "killed", instance: "i", time: new Date(0) }).category).toBe("resource")
      }
      expect(yield* workerPid(instance)).not.toBe(pid)
    }).pipe(Effect.provide(WorkerTestLive)),
  )

  it.scopedLive("restarts are bounded: past the budget the instance is marked failed", () =>
    Effect.gen(function* () {
      const plugin = yield* fixture("budget", slowAction)
      const instance = yield* startInstance({
        plugin,
        locked: yield* lockOf(plugin),
        drift: "ignore",
        restartPolicy: { maxRestarts: 1, window: "1 minute" },
      })
      process.kill((yield* workerPid(instance)) as number, "SIGTERM")
      yield* Effect.sleep("300 millis")
      process.kill((yield* workerPid(instance)) as number, "SIGTERM")
      yield* Effect.sleep("300 millis")
      expect(yield* Effect.flip(instance.invoke("pid", {}))).toMatchObject({ _tag: "InstanceFailed", restarts: 1 })
      expect(yield* Effect.flip(instance.invoke("pid", {}))).toMatchObject({ _tag: "InstanceFailed" })
    }).pipe(Effect.provide(WorkerTestLive)),
  )

  it.scopedLive("a process exiting by itself mid-call is a transient error", () =>
    Effect.gen(function* () {
      const plugin = yield* fixture("exits", `exit: action({ description: "", input: Schema.Struct({}), output: Schema.Number, handler: () => Effect.sync(() => process.exit(3)) }),`)
      const instance = yield* startInstance({ plugin, locked: yield* lockOf(plugin), drift: "ignore" })
      const failure = yield* Effect.flip(instance.invoke("exit", {}))
      expect(failure).toMatchObject({ _tag: "WorkerExited", exitCode: 3 })
      expect(toJobError(failure, { plugin: "exits", instance: "i", time: new Date(0) }).category).toBe("transient")
    }).pipe(Effect.provide(WorkerTestLive)),
  )
})

describe("worker start-up", () => {
  it.scopedLive("a plugin that throws while loading is WorkerStartFailed naming the error", () =>
    Effect.gen(function* () {
      const plugin = writePlugin(root, "crash-at-load", { "index.js": `throw new Error("broken on purpose")` })
      const failure = yield* Effect.flip(startInstance({ plugin, locked: yield* lockOf(plugin), drift: "ignore" }))
      expect(failure._tag).toBe("WorkerStartFailed")
      expect(failure.message).toContain("broken on purpose")
    }).pipe(Effect.provide(WorkerTestLive)),
  )

  it.scopedLive("a plugin that hangs while loading is WorkerStartFailed at the deadline", () =>
    Effect.gen(function* () {
      const plugin = writePlugin(root, "hang-at-load", { "index.js": `globalThis.__hangPid = process.pid; await new Promise(() => setInterval(() => {}, 1000))` })
      const failure = yield* Effect.flip(startInstance({ plugin, locked: yield* lockOf(plugin), drift: "ignore", startTimeout: "1500 millis" }))
      expect(failure).toMatchObject({ _tag: "WorkerStartFailed" })
      expect(failure.message).toContain("not ready within")
    }).pipe(Effect.provide(WorkerTestLive)),
  )

  it.scopedLive("a process that crashes before it is ready is WorkerStartFailed with its stderr tail and exit code (substituted spawner)", () =>
    Effect.gen(function* () {
      const crasher = join(root, "crasher.mjs")
      writeFileSync(crasher, `process.stderr.write("cannot start: missing thing\\n"); process.exit(7)`)
      const CrashingSpawner = Layer.succeed(ProcessSpawner, {
        spawn: (request) => Effect.sync(() => spawnWorkerProcess({ ...request, modulePath: crasher, execArgv: [] })),
      })
      const plugin = yield* fixture("never-ready", slowAction)
      const failure = yield* Effect.flip(
        // The permission tier: the crasher lives where an OS-tier worker cannot see it.
        startInstance({ plugin, locked: yield* lockOf(plugin), drift: "ignore", isolation: "permissions" }).pipe(Effect.provide(CrashingSpawner)),
      )
      expect(failure).toMatchObject({ _tag: "WorkerStartFailed", exitCode: 7, reason: "the worker exited before it was ready" })
      expect(failure._tag === "WorkerStartFailed" && failure.stderrTail).toContain("cannot start: missing thing")
    }).pipe(Effect.provide(WorkerTestLive)),
  )

  it.scopedLive("the live declaration is compared with the manifest: a difference refuses the start with DeclarationDrift", () =>
    Effect.gen(function* () {
      const locked = yield* lockOf(showcase)
      const declaration = yield* describePlugin({ plugin: showcase, locked })
      expect(declaration.actions).toEqual(showcase.manifest.actions)
      const drifted = {
        ...showcase,
        manifest: { ...showcase.manifest, actions: { ...showcase.manifest.actions!, greet: { ...showcase.manifest.actions!["greet"]!, description: "old words" } } },
      }
      const failure = yield* Effect.flip(startInstance({ plugin: drifted, locked }))
      expect(failure).toMatchObject({ _tag: "DeclarationDrift", differences: ["action 'greet': description differs from the manifest"] })
    }).pipe(Effect.provide(WorkerTestLive)),
  )
})

describe("sandbox", () => {
  const secretFile = join(root, "outside-secret.txt")
  const probes = `
    read: action({ description: "", input: Schema.Struct({ path: Schema.String }), output: Schema.String, handler: ({ path }) => Effect.sync(() => readFileSync(path, "utf8")) }),
    write: action({ description: "", input: Schema.Struct({ path: Schema.String }), output: Schema.String, handler: ({ path }) => Effect.sync(() => { writeFileSync(path, "x"); return "written" }) }),
    dataWrite: action({ description: "", input: Schema.Struct({}), output: Schema.String, handler: (_, { dataDir }) => Effect.sync(() => { writeFileSync(dataDir + "/note.txt", "kept"); return dataDir }) }),
    spawn: action({ description: "", input: Schema.Struct({}), output: Schema.Number, handler: () => Effect.sync(() => spawnSync("true").status) }),
    env: action({ description: "", input: Schema.Struct({ name: Schema.String }), output: Schema.String, handler: ({ name }) => Effect.sync(() => String(process.env[name])) }),
    importAny: action({ description: "", input: Schema.Struct({ specifier: Schema.String }), output: Schema.String, handler: ({ specifier }) => Effect.promise(() => import(specifier)).pipe(Effect.as("imported")) }),
    log: action({ description: "", input: Schema.Struct({}), output: Schema.String, handler: () => Effect.sync(() => { console.log("out", { a: 1 }); console.error("err"); console.warn("warn"); return "logged" }).pipe(Effect.tap(() => Effect.log("effect"))) }),`
  const prelude = `import { readFileSync, writeFileSync } from "node:fs"; import { spawnSync } from "node:child_process"`

  it.scopedLive("denies reads outside the plugin, writes without a grant, spawning and undeclared variables, each typed; the host is unaffected", () =>
    Effect.gen(function* () {
      writeFileSync(secretFile, "host secret")
      process.env["PLINTH_TEST_DECLARED"] = "visible"
      process.env["PLINTH_TEST_SECRET"] = "hidden"
      const plugin = yield* fixture("sandboxed", probes, prelude, { permissions: { env: ["PLINTH_TEST_DECLARED"] } })
      const instance = yield* startInstance({ plugin, locked: yield* lockOf(plugin), drift: "ignore" })
      expect(yield* Effect.flip(instance.invoke("read", { path: secretFile }))).toMatchObject({ _tag: "SandboxDenied", permission: "fs-read", resource: secretFile })
      // Not even its own folder: the verified bytes arrive over the channel, assets through context.files.
      expect(yield* Effect.flip(instance.invoke("read", { path: join(plugin.dir, "plugin.json") }))).toMatchObject({ _tag: "SandboxDenied", permission: "fs-read" })
      expect(yield* Effect.flip(instance.invoke("write", { path: join(plugin.dir, "evil.txt") }))).toMatchObject({ _tag: "SandboxDenied", permission: "fs-write" })
      expect(yield* Effect.flip(instance.invoke("spawn", {}))).toMatchObject({ _tag: "SandboxDenied", permission: "child-process" })
      expect(yield* Effect.flip(instance.invoke("env", { name: "PLINTH_TEST_SECRET" }))).toMatchObject({ _tag: "SandboxDenied", permission: "env", resource: "PLINTH_TEST_SECRET" })
      expect(yield* instance.invoke("env", { name: "PLINTH_TEST_DECLARED" })).toBe("visible")
      // Logging reads Node's colour settings (FORCE_COLOR, NO_COLOR, TERM…): never a denial, though none is declared.
      expect(yield* instance.invoke("log", {})).toBe("logged")
      expect(yield* instance.invoke("env", { name: "FORCE_COLOR" })).toBe("undefined")
      expect(yield* Effect.flip(instance.invoke("importAny", { specifier: "vitest" }))).toMatchObject({ _tag: "SandboxDenied", permission: "import", resource: "vitest" })
      // The worker survived every denial, and so did the host.
      expect(existsSync(join(plugin.dir, "evil.txt"))).toBe(false)
      expect(readFileSync(secretFile, "utf8")).toBe("host secret")
      expect(yield* instance.invoke("env", { name: "PLINTH_TEST_DECLARED" })).toBe("visible")
    }).pipe(Effect.provide(WorkerTestLive)),
  )

  it.scopedLive("a dataDir grant allows writes in the plugin's data folder only", () =>
    Effect.gen(function* () {
      const plugin = yield* fixture("with-data", probes, prelude, { permissions: { dataDir: true } })
      const dataRoot = join(root, "data")
      const instance = yield* startInstance({ plugin, locked: yield* lockOf(plugin), drift: "ignore", dataRoot })
      const dataDir = (yield* instance.invoke("dataWrite", {})) as string
      expect(readFileSync(join(dataDir, "note.txt"), "utf8")).toBe("kept")
      expect(yield* Effect.flip(instance.invoke("write", { path: join(root, "escaped.txt") }))).toMatchObject({ _tag: "SandboxDenied", permission: "fs-write" })
    }).pipe(Effect.provide(WorkerTestLive)),
  )

  it.scopedLive("a plugin importing a package it may not use is refused before it runs", () =>
    Effect.gen(function* () {
      const plugin = writePlugin(root, "bad-import", { "index.js": `import x from "vitest"; export default x` })
      const failure = yield* Effect.flip(startInstance({ plugin, locked: yield* lockOf(plugin), drift: "ignore" }))
      expect(failure.message).toContain("SandboxDenied")
    }).pipe(Effect.provide(WorkerTestLive)),
  )
})

describe("the bytes that run are the bytes that were verified", () => {
  it.scopedLive("a file swapped after verification never runs, however the swap races the start", () =>
    Effect.gen(function* () {
      const dataRoot = join(root, "swap-data")
      const good = pluginSource(`which: action({ description: "", input: Schema.Struct({}), output: Schema.String, handler: () => Effect.succeed("good") }),`)
      const evil = good.replace(`"good"`, `"evil"`).replace("export default", `import { writeFileSync } from "node:fs"; writeFileSync(${JSON.stringify(join(dataRoot, "swap", "witness"))}, "ran");\nexport default`)
      const plugin = yield* described(writePlugin(root, "swap", { "index.js": good }, { permissions: { dataDir: true } }))
      const locked = yield* lockOf(plugin)
      const entry = join(plugin.dir, "index.js")
      let outcomes = { good: 0, refused: 0 }
      let swapping = true
      // Flip the file between the verified and the evil content as fast as the disk allows.
      const swapper = yield* Effect.fork(
        Effect.gen(function* () {
          let flip = false
          while (swapping) {
            writeFileSync(entry, (flip = !flip) ? evil : good)
            yield* Effect.sleep("1 millis")
          }
          writeFileSync(entry, good)
        }),
      )
      for (let round = 0; round < 12; round++) {
        const started = yield* Effect.either(
          Effect.scoped(Effect.flatMap(startInstance({ plugin, locked, drift: "ignore", dataRoot }), (i) => i.invoke("which", {}))),
        )
        if (Either.isRight(started)) {
          expect(started.right).toBe("good")
          outcomes = { ...outcomes, good: outcomes.good + 1 }
        } else {
          expect(started.left._tag).toBe("IntegrityMismatch")
          outcomes = { ...outcomes, refused: outcomes.refused + 1 }
        }
      }
      swapping = false
      yield* swapper.await
      // Deterministically: evil bytes on disk at start are refused.
      writeFileSync(entry, evil)
      const refused = yield* Effect.flip(Effect.scoped(startInstance({ plugin, locked, drift: "ignore", dataRoot })))
      expect(refused).toMatchObject({ _tag: "IntegrityMismatch", changed: ["index.js"] })
      writeFileSync(entry, good)
      expect(outcomes.good + outcomes.refused).toBe(12)
      expect(existsSync(join(dataRoot, "swap", "witness"))).toBe(false)
    }).pipe(Effect.provide(WorkerTestLive)),
  )
})

describe("host death", () => {
  it("a worker exits within 2 s after its host is killed with SIGKILL", async () => {
    const plugin = writeFixture("orphan", slowAction)
    const locked = await Effect.runPromise(lockOf(plugin))
    const host = spawn(process.execPath, [join(import.meta.dirname, "fixtures", "workerHost.mjs"), plugin.dir, JSON.stringify(locked)], {
      stdio: ["ignore", "pipe", "inherit"],
    })
    const workerPid = await new Promise<number>((resolvePid, reject) => {
      host.stdout.on("data", (chunk: Buffer) => {
        const match = /worker-pid (\d+)/.exec(chunk.toString())
        if (match) resolvePid(Number(match[1]))
      })
      host.on("exit", (code) => reject(new Error(`the host exited early with ${code}`)))
    })
    expect(isAlive(workerPid)).toBe(true)
    host.kill("SIGKILL")
    const deadline = Date.now() + 2000
    while (isAlive(workerPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    const orphaned = isAlive(workerPid)
    if (orphaned) execFileSync("kill", ["-9", String(workerPid)])
    expect(orphaned).toBe(false)
  })
})
