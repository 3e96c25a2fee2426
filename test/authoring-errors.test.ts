import { readFileSync } from "node:fs"
import { join } from "node:path"
import { Effect, Either } from "effect"
import { beforeAll, describe, expect, it } from "vitest"
import { PlinthLive, startVerifiedPlugin } from "@plinth/runtime"
import { buildCli, plinth, repo, type Run } from "./support/cli.js"
import { workspace, writePlugin } from "./support/plugins.js"

/*
 * Plugin authors' mistakes, end to end: the built CLI, real worker
 * processes. A definition that breaks a rule of definePlugin is a typed
 * DefinitionInvalid naming the action and the rule, at `describe` and at
 * start, or at the call for what a handler returns; a worker that dies says
 * why, with the end of its stderr.
 */

beforeAll(() => {
  buildCli()
})

const SEQUENCE_TIMEOUT = 90_000

/** The failure object of a `--json` run (one object, or JSON Lines ending with it), whichever key the envelope keeps it under. */
const failureOf = (run: Run): Record<string, any> => {
  const text = run.stdout.trim()
  let outcome: Record<string, any>
  try {
    outcome = JSON.parse(text) as Record<string, any>
  } catch {
    outcome = JSON.parse(text.split("\n").at(-1)!) as Record<string, any>
  }
  expect(outcome["ok"], run.stdout).toBe(false)
  return (outcome["failure"] ?? outcome["error"]) as Record<string, any>
}

const header = `import { Effect, Schema, Stream } from "effect"\nimport { definePlugin } from "@plinth/domain"\n`

/** A plugin with one action `broken` built from `actionSource` and a sound action `fine`. */
const pluginWith = (actionSource: string) =>
  header +
  `export default definePlugin({\n  config: Schema.Struct({}),\n  actions: ({ action, streaming }) => ({\n` +
  `    fine: action({ description: "works", input: Schema.Struct({}), output: Schema.String, handler: () => Effect.succeed("fine") }),\n` +
  `    broken: ${actionSource},\n  }),\n})\n`

/** A workspace holding plugin `author` with the given entry; `describe --write` and `lock` are run when `lock` is set. */
const setUp = async (entry: string, options: { readonly lock?: boolean } = {}) => {
  const ws = workspace()
  writePlugin(ws.root, { id: "author", files: { "index.js": entry } })
  const common = ["--root", ws.root, "--lock", ws.lock]
  if (options.lock === true) {
    const described = await plinth(ws.dir, ["plugins", "describe", "author", "--write", "--root", ws.root])
    expect(described.code, described.stderr).toBe(0)
    const locked = await plinth(ws.dir, ["plugins", "lock", ...common])
    expect(locked.code, locked.stderr).toBe(0)
  }
  const invokeWith = (action: string, input: unknown, ...rest: Array<string>) =>
    plinth(ws.dir, ["plugins", "invoke", "author", action, "--input", JSON.stringify(input), ...common, ...rest])
  const invoke = (action: string, ...rest: Array<string>) => invokeWith(action, {}, ...rest)
  const describeIt = (...rest: Array<string>) => plinth(ws.dir, ["plugins", "describe", "author", "--root", ws.root, ...rest])
  return { ws, invoke, invokeWith, describe: describeIt }
}

describe.concurrent("a definition that breaks a rule of definePlugin", () => {
  it("a streaming action written with 'handler' instead of 'stream' is named at describe and at start, not a crashed worker", { timeout: SEQUENCE_TIMEOUT }, async () => {
    const source = pluginWith(
      `streaming({ description: "counts", input: Schema.Struct({}), output: Schema.Number, handler: () => Stream.make(1, 2, 3) })`,
    )
    const { invoke, describe: describeIt, ws } = await setUp(source)
    const human = await describeIt()
    expect(human.code, human.stderr).toBe(8)
    expect(human.stderr).toContain("[DefinitionInvalid]")
    expect(human.stderr).toContain("action 'broken'")
    expect(human.stderr).toContain("streaming-stream")
    expect(human.stderr).toContain("not 'handler'")
    expect(human.stderr).not.toMatch(/\n\s+at /)

    const machine = failureOf(await describeIt("--json"))
    expect(machine).toMatchObject({ _tag: "DefinitionInvalid", plugin: "author", action: "broken", rule: "streaming-stream" })

    // At start: whatever the manifest says, the worker refuses to load the definition, typed.
    writePlugin(ws.root, {
      id: "author",
      files: { "index.js": source },
      manifest: { actions: { broken: { description: "counts", input: {}, output: {}, streaming: true } } },
    })
    expect((await plinth(ws.dir, ["plugins", "lock", "--root", ws.root, "--lock", ws.lock])).code).toBe(0)
    const started = await invoke("broken", "--json")
    expect(started.code, started.stderr).toBe(8)
    expect(failureOf(started)).toMatchObject({ _tag: "DefinitionInvalid", action: "broken", rule: "streaming-stream" })
  })

  it("a missing input Schema, a unary action given 'stream' and an async setup are each named with their rule", { timeout: SEQUENCE_TIMEOUT }, async () => {
    const noInput = await setUp(pluginWith(`action({ description: "no input", output: Schema.String, handler: () => Effect.succeed("x") })`))
    const missing = await noInput.describe("--json")
    expect(missing.code).toBe(8)
    expect(failureOf(missing)).toMatchObject({ _tag: "DefinitionInvalid", action: "broken", rule: "input-schema" })

    const wrongKind = await setUp(
      pluginWith(`action({ description: "kind", input: Schema.Struct({}), output: Schema.Number, stream: () => Stream.make(1) })`),
    )
    const asyncSetup = await setUp(
      header +
        `export default definePlugin({ config: Schema.Struct({}), setup: async () => {}, actions: ({ action }) => ({}) })\n`,
    )
    const setup = await asyncSetup.describe("--json")
    expect(setup.code).toBe(8)
    expect(failureOf(setup)).toMatchObject({ _tag: "DefinitionInvalid", rule: "lifecycle-function" })
    expect(failureOf(setup)["detail"]).toContain("'setup' must return an Effect")

    const kind = await wrongKind.describe("--json")
    expect(kind.code).toBe(8)
    expect(failureOf(kind)).toMatchObject({ _tag: "DefinitionInvalid", action: "broken", rule: "unary-handler" })
    expect(failureOf(kind)["detail"]).toContain("streaming(")
  })

  it("a handler returning a Promise, a plain value or a Stream fails its call, typed, and the worker keeps serving", { timeout: SEQUENCE_TIMEOUT }, async () => {
    const source =
      header +
      `export default definePlugin({\n  config: Schema.Struct({}),\n  actions: ({ action, streaming }) => ({\n` +
      `    promise: action({ description: "p", input: Schema.Struct({}), output: Schema.String, handler: async () => "x" }),\n` +
      `    plain: action({ description: "v", input: Schema.Struct({}), output: Schema.String, handler: () => "x" }),\n` +
      `    stream: action({ description: "s", input: Schema.Struct({}), output: Schema.Number, handler: () => Stream.make(1, 2) }),\n` +
      `    notStream: streaming({ description: "n", input: Schema.Struct({}), output: Schema.Number, stream: () => Effect.succeed(1) }),\n` +
      `    fine: action({ description: "works", input: Schema.Struct({}), output: Schema.String, handler: () => Effect.succeed("fine") }),\n` +
      `  }),\n})\n`
    const { invoke, ws } = await setUp(source, { lock: true })

    // One worker, several calls: the broken ones fail typed, the worker is the same one afterwards.
    const inHost = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const instance = yield* startVerifiedPlugin({ root: ws.root, lock: ws.lock, plugin: "author", startOptions: { isolation: "permissions" } })
          const before = yield* instance.pid
          const failures = []
          for (const action of ["promise", "plain", "stream"]) failures.push(yield* Effect.either(instance.invoke(action, {})))
          const fine = yield* instance.invoke("fine", {})
          return { before, after: yield* instance.pid, failures, fine }
        }),
      ).pipe(Effect.provide(PlinthLive)),
    )
    expect(inHost.fine).toBe("fine")
    expect(inHost.after).toBe(inHost.before)
    for (const failure of inHost.failures) expect(Either.isLeft(failure) && failure.left).toMatchObject({ _tag: "DefinitionInvalid", rule: "handler-returns-effect" })

    const promise = await invoke("promise", "--json")
    expect(promise.code, promise.stderr).toBe(8)
    expect(failureOf(promise)).toMatchObject({ _tag: "DefinitionInvalid", action: "promise", rule: "handler-returns-effect" })
    expect(failureOf(promise)["detail"]).toContain("a Promise")

    const plain = await invoke("plain")
    expect(plain.code).toBe(8)
    expect(plain.stderr).toContain("handler-returns-effect")
    expect(plain.stderr).toContain('a string ("x")')

    // The README's old prose: "a handler returning … a Stream". It now says what to write instead.
    const stream = await invoke("stream", "--json")
    expect(stream.code).toBe(8)
    expect(failureOf(stream)["detail"]).toContain("streaming({")

    const notStream = await invoke("notStream", "--json")
    expect(notStream.code).toBe(8)
    expect(failureOf(notStream)).toMatchObject({ _tag: "DefinitionInvalid", action: "notStream", rule: "stream-returns-stream" })
  })
})

describe.concurrent("a worker that dies says why", () => {
  it("a module body that throws fails the start with the thrown message", async () => {
    const { describe: describeIt } = await setUp(`throw new Error("the plugin cannot find its config file")\n`)
    const run = await describeIt("--json")
    expect(run.code).toBe(8)
    const failure = failureOf(run)
    expect(failure["_tag"]).toBe("WorkerStartFailed")
    expect(failure["reason"]).toContain("the plugin cannot find its config file")
  })

  it("a module body that writes to stderr and exits fails the start with the end of its stderr, shown by the CLI", async () => {
    const entry = `process.stderr.write("\\u001b[31mfatal: no licence key\\u001b[0m\\n")\nprocess.exit(3)\n`
    const { describe: describeIt } = await setUp(entry)
    const machine = await describeIt("--json")
    expect(machine.code).toBe(8)
    const failure = failureOf(machine)
    expect(failure).toMatchObject({ _tag: "WorkerStartFailed", exitCode: 3 })
    // Colour codes are removed: the tail is text.
    expect(failure["stderrTail"]).toBe("fatal: no licence key\n")

    const human = await describeIt()
    expect(human.code).toBe(8)
    expect(human.stderr).toContain("worker stderr:\n    fatal: no licence key")
  })

  it("a worker that exits during a call fails it as WorkerExited carrying the end of its stderr, capped", { timeout: SEQUENCE_TIMEOUT }, async () => {
    const source =
      header +
      `export default definePlugin({\n  config: Schema.Struct({}),\n  actions: ({ action }) => ({\n` +
      `    quit: action({ description: "q", input: Schema.Struct({}), output: Schema.String, handler: () => Effect.sync(() => {\n` +
      `      process.stderr.write("noise ".repeat(2000) + "\\nthe database is gone\\n")\n      process.exit(2)\n    }) }),\n` +
      `  }),\n})\n`
    const { invoke } = await setUp(source, { lock: true })
    const machine = await invoke("quit", "--json")
    expect(machine.code, machine.stderr).toBe(6)
    const failure = failureOf(machine)
    expect(failure).toMatchObject({ _tag: "WorkerExited", exitCode: 2 })
    expect(failure["stderrTail"]).toMatch(/the database is gone\n$/)
    expect(failure["stderrTail"].length).toBeLessThanOrEqual(4096)

    const human = await invoke("quit")
    expect(human.code).toBe(6)
    expect(human.stderr).toContain("worker stderr:")
    expect(human.stderr).toContain("    the database is gone")
  })
})

describe("the README's plugin example", () => {
  it("is a working plugin: a plain and a streaming action, as written there", { timeout: SEQUENCE_TIMEOUT }, async () => {
    const readme = readFileSync(join(repo, "README.md"), "utf8")
    const section = readme.slice(readme.indexOf("## Writing a plugin"))
    const example = /```js\n([\s\S]*?)```/.exec(section)![1]!
    expect(example).toContain("stream: (")
    const { invokeWith } = await setUp(example, { lock: true })
    const greet = await invokeWith("greet", { name: "Ada" }, "--json")
    expect(greet.code, greet.stderr).toBe(0)
    expect(JSON.parse(greet.stdout)).toMatchObject({ ok: true, result: "Hello, Ada!" })
    const count = await invokeWith("count", { to: 3 })
    expect(count.code, count.stderr).toBe(0)
    expect(count.stdout.trim().split("\n")).toEqual(['{"n":1}', '{"n":2}', '{"n":3}'])
  })
})
