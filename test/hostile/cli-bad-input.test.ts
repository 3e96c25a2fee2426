import { spawn, spawnSync } from "node:child_process"
import { cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { buildCli, plinth, repo } from "../support/cli.js"
import { lockNow, tempDir, workspace, writeFile, writePlugin } from "../support/plugins.js"

/*
 * Bad input never crashes the CLI and never leaves it hanging: every case ends
 * in its documented exit code with a one-line reason, and output is complete.
 */


const greeter = {
  "index.js": [
    'import { Effect, Schema } from "effect"',
    'import { definePlugin } from "@plinth/domain"',
    "export default definePlugin({",
    "  config: Schema.Struct({}),",
    '  actions: ({ action }) => ({ echo: action({ description: "", input: Schema.Unknown, output: Schema.Unknown, handler: (input) => Effect.succeed(input) }) }),',
    "})",
    "",
  ].join("\n"),
}

let template: ReturnType<typeof workspace>

// One plugin, described and locked once; each test works on its own copy.
beforeAll(async () => {
  buildCli()
  template = workspace()
  writePlugin(template.root, { id: "echo", files: greeter })
  const described = await plinth(template.dir, ["plugins", "describe", "echo", "--write"])
  expect(described.code, described.stderr).toBe(0)
  await lockNow(template.root, template.lock)
})

/** A copy of the locked workspace with one plugin. */
const lockedWorkspace = async () => {
  const dir = tempDir("plinth-bad-input-")
  cpSync(template.dir, dir, { recursive: true })
  return { dir, root: join(dir, "plugins"), lock: join(dir, "PLUGINS.lock") }
}

const oneLine = (text: string) => text.trim().split("\n")[0]!

describe("duplicate keys are refused, not resolved silently", () => {
  it("plugin.json with a key twice is a rejection (exit 4) naming the key", async () => {
    const ws = await lockedWorkspace()
    const manifest = join(ws.root, "echo", "plugin.json")
    const text = '{\n  "id": "echo",\n  "version": "1.0.0",\n  "description": "",\n  "entry": "index.js",\n  "entry": "evil.js"\n}\n'
    writeFileSync(manifest, text)
    const run = await plinth(ws.dir, ["plugins", "verify", "--json"])
    expect(run.code).toBe(4)
    const failure = JSON.parse(run.stdout)
    expect(failure).toMatchObject({ ok: false })
    expect(run.stdout).toContain("SchemaViolation")
    expect(run.stdout).toContain('the key \\"entry\\" appears twice in the top-level object (line 6, column 3); keep one')
    const human = await plinth(ws.dir, ["plugins", "verify"])
    expect(human.code).toBe(4)
    expect(human.stderr).toContain('"entry" appears twice')
  })

  it("PLUGINS.lock with a key twice is LockFileMalformed (exit 4) naming the key", async () => {
    const ws = await lockedWorkspace()
    const lock = readFileSync(ws.lock, "utf8")
    // The same plugin pinned twice: a reviewer reads the first entry, JSON.parse keeps the second.
    const doubled = lock.replace('"plugins": {', '"plugins": {\n    "echo": { "digest": "h1:AAAA", "files": {} },')
    writeFileSync(ws.lock, doubled)
    const run = await plinth(ws.dir, ["plugins", "verify"])
    expect(run.code).toBe(4)
    expect(run.stderr).toContain("LockFileMalformed")
    expect(run.stderr).toMatch(/the key "echo" appears twice in the object at plugins \(line \d+, column \d+\); keep one/)
  })
})

const makeFolder = (dir: string): string => {
  mkdirSync(join(dir, "lock-folder"))
  return "lock-folder"
}

const makeFifo = (dir: string): string => {
  const fifo = join(dir, "lock-fifo")
  expect(spawnSync("mkfifo", [fifo]).status).toBe(0)
  return fifo
}

describe("--lock that is not a regular file", () => {
  it.each([
    ["a folder", makeFolder],
    ["a FIFO (reading it must not wait for a writer)", makeFifo],
    ["a device", (): string => "/dev/zero"],
  ] as const)("%s is LockFileMalformed (exit 4) for verify, list, lock and invoke", async (_label, make) => {
    const ws = await lockedWorkspace()
    const lock = make(ws.dir)
    for (const args of [["verify"], ["list"], ["lock", "--check"], ["lock"], ["invoke", "echo", "echo", "--input", "1"]]) {
      const run = await plinth(ws.dir, ["plugins", ...args, "--lock", lock])
      expect(run.code, `${args.join(" ")}: ${run.stderr}`).toBe(4)
      expect(run.stderr).toContain("LockFileMalformed")
      expect(run.stderr).toMatch(/is a folder|is not a regular file/)
    }
  }, 30_000)
})

describe("over-deep --input and --config", () => {
  it.each(["--input", "--config"])("%s nested 5,000 levels deep is an input error (exit 5) in one line, before anything starts", async (option) => {
    const ws = await lockedWorkspace()
    const deep = "[".repeat(5000) + "]".repeat(5000)
    const args = option === "--input" ? ["--input", deep] : ["--input", "1", "--config", deep]
    const run = await plinth(ws.dir, ["plugins", "invoke", "echo", "echo", ...args])
    expect(run.code).toBe(5)
    expect(oneLine(run.stderr)).toBe(`invalid input: ${option} is nested 5000 levels deep; at most 100 levels are accepted`)
    const json = await plinth(ws.dir, ["plugins", "invoke", "echo", "echo", ...args, "--json"])
    expect(json.code).toBe(5)
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, error: { _tag: "InvalidJsonOption", option } })
  })

  it("an --input as deep as allowed still reaches the plugin", async () => {
    const ws = await lockedWorkspace()
    const input = "[".repeat(100) + "]".repeat(100)
    const run = await plinth(ws.dir, ["plugins", "invoke", "echo", "echo", "--input", input, "--json"])
    expect(run.code, run.stderr).toBe(0)
  })
})

describe("--json output is complete when piped", () => {
  it("a rejection report over 64 KiB arrives whole, with exit 4", async () => {
    const ws = await lockedWorkspace()
    const extra = 3000
    for (let i = 0; i < extra; i++) writeFile(join(ws.root, "echo", "extra", `an-added-file-with-a-rather-long-name-${String(i).padStart(5, "0")}.txt`), "x")
    for (let attempt = 0; attempt < 3; attempt++) {
      const run = await plinth(ws.dir, ["plugins", "verify", "--json"])
      expect(run.code).toBe(4)
      expect(run.stdout.length).toBeGreaterThan(128 * 1024)
      const report = JSON.parse(run.stdout)
      expect(JSON.stringify(report)).toContain("IntegrityMismatch")
      expect(report.error.added.filter((name: string) => name.includes("an-added-file-with-a-rather-long-name-"))).toHaveLength(extra)
    }
  }, 60_000)
})

/** Runs the CLI and reports when its last output arrived and when it exited. */
const timedRun = (cwd: string, args: ReadonlyArray<string>) =>
  new Promise<{ code: number | null; stdout: string; lingerMs: number }>((resolve) => {
    const child = spawn(process.execPath, [join(repo, "packages/cli/bin/plinth.js"), ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let lastOutput = performance.now()
    const seen = (chunk: Buffer) => {
      lastOutput = performance.now()
      return chunk.toString()
    }
    child.stdout.on("data", (chunk: Buffer) => (stdout += seen(chunk)))
    child.stderr.on("data", seen)
    child.on("exit", (code) => resolve({ code, stdout, lingerMs: performance.now() - lastOutput }))
  })

describe("verify and lock exit as soon as their work is done", () => {
  it("on a tree big enough for the hashing helpers, the process ends right after its last line", async () => {
    const ws = workspace()
    writePlugin(ws.root, { id: "big", files: greeter })
    // 2,000 files, 16 MiB: enough for the main thread to call hashing helpers in.
    const block = Buffer.alloc(16 * 1024, 7)
    for (let i = 0; i < 2000; i++) writeFile(join(ws.root, "big", "data", `f${i}.bin`), block.subarray(0, 1024 + ((i * 7919) % (15 * 1024))))
    for (const args of [["plugins", "lock"], ["plugins", "verify"], ["plugins", "lock", "--check"]]) {
      const run = await timedRun(ws.dir, args)
      expect(run.code, args.join(" ")).toBe(0)
      expect(run.stdout.length).toBeGreaterThan(0)
      // The hashing pool's idle timer is 10 s; a process it held would linger that long.
      expect(run.lingerMs, `${args.join(" ")} lingered`).toBeLessThan(2000)
    }
  }, 60_000)
})
