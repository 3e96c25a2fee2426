import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { buildCli, examplesWorkspace, plinth, repo } from "./support/cli.js"
import { workspace, writePlugin } from "./support/plugins.js"

/*
 * `plinth plugins describe --check`, the drift check CI runs: a manifest that
 * no longer says what its plugin's code declares passes `verify` and
 * `lock --check` (the lock pins bytes, not meaning); this finds it, from the
 * verified bytes, and exits 3 naming the plugin and what differs.
 */

beforeAll(() => {
  buildCli()
})

const SEQUENCE_TIMEOUT = 90_000

const examplesCopy = () => {
  const dir = examplesWorkspace("plinth-drift-")
  return { dir, common: ["--root", join(dir, "plugins"), "--lock", join(dir, "PLUGINS.lock")] }
}

describe.concurrent("plinth plugins describe --check", () => {
  it("passes on the examples as committed (what .ci/run checks)", { timeout: SEQUENCE_TIMEOUT }, async () => {
    const run = await plinth(repo, ["plugins", "describe", "--check", "--root", "examples/plugins", "--lock", "PLUGINS.lock", "--json"])
    expect(run.code, run.stderr).toBe(0)
    const outcome = JSON.parse(run.stdout)
    expect(outcome.ok).toBe(true)
    expect(outcome.plugins.map((p: { id: string }) => p.id)).toEqual(["case-tools", "greeter", "showcase", "text-tools", "vault-demo", "word-count"])
    for (const plugin of outcome.plugins) expect(plugin).toMatchObject({ upToDate: true, differences: [] })
  })

  it("a plugin whose code gained an action, re-locked without describe --write: verify and lock --check pass, describe --check exits 3 naming it", { timeout: SEQUENCE_TIMEOUT }, async () => {
    const { dir, common } = examplesCopy()
    const entry = join(dir, "plugins/greeter/index.js")
    const source = readFileSync(entry, "utf8")
    const gained = source.replace(
      "actions: ({ action }) => ({",
      `actions: ({ action }) => ({\n    wave: action({ description: "Waves.", input: Schema.Struct({}), output: Schema.String, handler: () => Effect.succeed("o/") }),`,
    )
    expect(gained).not.toBe(source)
    writeFileSync(entry, gained)
    expect((await plinth(dir, ["plugins", "lock", ...common])).code).toBe(0)
    expect((await plinth(dir, ["plugins", "verify", ...common])).code).toBe(0)
    expect((await plinth(dir, ["plugins", "lock", "--check", ...common])).code).toBe(0)

    const human = await plinth(dir, ["plugins", "describe", "--check", ...common])
    expect(human.code, human.stderr).toBe(3)
    expect(human.stdout).toMatch(/stale\s+greeter\s+plugin\.json differs from its code:\n\s+action 'wave' is defined by the plugin but missing from the manifest/)
    expect(human.stdout).toMatch(/ok\s+showcase/)
    expect(human.stderr).toContain("the manifest of 'greeter' differs from its code")
    expect(human.stderr).toContain("plinth plugins describe <id> --write")

    const machine = await plinth(dir, ["plugins", "describe", "--check", "--json", ...common])
    expect(machine.code).toBe(3)
    const outcome = JSON.parse(machine.stdout)
    expect(outcome).toMatchObject({ ok: false, error: { _tag: "ManifestsStale", plugins: ["greeter"] } })
    expect(outcome.error.differences.find((p: { id: string }) => p.id === "greeter")).toEqual({
      id: "greeter",
      upToDate: false,
      differences: [{ change: "added", action: "wave", text: "action 'wave' is defined by the plugin but missing from the manifest" }],
    })

    // Only one plugin, by id.
    const one = await plinth(dir, ["plugins", "describe", "showcase", "--check", "--json", ...common])
    expect(one.code, one.stderr).toBe(0)
    expect(JSON.parse(one.stdout).plugins.map((p: { id: string }) => p.id)).toEqual(["showcase"])

    // describe --write fixes it; after review and a new lock the check passes.
    expect((await plinth(dir, ["plugins", "describe", "greeter", "--write", ...common])).code).toBe(0)
    expect((await plinth(dir, ["plugins", "lock", ...common])).code).toBe(0)
    expect((await plinth(dir, ["plugins", "describe", "--check", ...common])).code).toBe(0)
  })

  it("names each kind of difference: action removed, kind changed, schema changed, config changed", { timeout: SEQUENCE_TIMEOUT }, async () => {
    const ws = workspace()
    const common = ["--root", ws.root, "--lock", ws.lock]
    const plugin = (actions: string, config = "Schema.Struct({})") =>
      `import { Effect, Schema, Stream } from "effect"\nimport { definePlugin } from "@plinth/domain"\n` +
      `export default definePlugin({ config: ${config}, actions: ({ action, streaming }) => ({\n${actions}\n}) })\n`
    writePlugin(ws.root, {
      id: "evolving",
      files: {
        "index.js": plugin(
          `gone: action({ description: "g", input: Schema.Struct({}), output: Schema.String, handler: () => Effect.succeed("") }),\n` +
            `flip: action({ description: "f", input: Schema.Struct({}), output: Schema.Number, handler: () => Effect.succeed(1) }),\n` +
            `shape: action({ description: "s", input: Schema.Struct({ n: Schema.Number }), output: Schema.Number, handler: ({ n }) => Effect.succeed(n) }),`,
        ),
      },
    })
    expect((await plinth(ws.dir, ["plugins", "describe", "evolving", "--write", ...common])).code).toBe(0)
    writeFileSync(
      join(ws.root, "evolving/index.js"),
      plugin(
        `flip: streaming({ description: "f", input: Schema.Struct({}), output: Schema.Number, stream: () => Stream.make(1) }),\n` +
          `shape: action({ description: "s", input: Schema.Struct({ n: Schema.String }), output: Schema.Number, handler: () => Effect.succeed(1) }),`,
        "Schema.Struct({ level: Schema.optional(Schema.Number) })",
      ),
    )
    expect((await plinth(ws.dir, ["plugins", "lock", ...common])).code).toBe(0)
    const run = await plinth(ws.dir, ["plugins", "describe", "--check", "--json", ...common])
    expect(run.code, run.stderr).toBe(3)
    expect(JSON.parse(run.stdout).error.differences[0].differences.map(({ change, action }: { change: string; action?: string }) => ({ change, action }))).toEqual([
      { change: "kind", action: "flip" },
      { change: "input", action: "shape" },
      { change: "removed", action: "gone" },
      { change: "config", action: undefined },
    ])
  })

  it("runs only verified bytes: code changed after the lock is a rejection (exit 4), and nothing is described", async () => {
    const { dir, common } = examplesCopy()
    writeFileSync(join(dir, "plugins/greeter/index.js"), `throw new Error("this must never run")\n`)
    const run = await plinth(dir, ["plugins", "describe", "--check", ...common])
    expect(run.code).toBe(4)
    expect(run.stderr).toContain("IntegrityMismatch")
    expect(run.stderr).not.toContain("this must never run")
  })

  it("usage: --check with --write, or no id without --check, exits 2", async () => {
    const { dir, common } = examplesCopy()
    const both = await plinth(dir, ["plugins", "describe", "--check", "--write", ...common])
    expect(both.code).toBe(2)
    expect(both.stderr).toContain("cannot be combined with --write")
    const none = await plinth(dir, ["plugins", "describe", ...common])
    expect(none.code).toBe(2)
    expect(none.stderr).toContain("describe needs a plugin id, or --check")
  })
})
