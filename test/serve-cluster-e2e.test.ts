import { spawn, type ChildProcess } from "node:child_process"
import { appendFileSync, cpSync, existsSync, mkdtempSync, readFileSync } from "node:fs"
import { createServer, type AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { codeDigest } from "@plinth/cluster"
import { bin, buildCli, examplesWorkspace, plinth } from "./support/cli.js"
import { startPostgres } from "./support/postgres.mjs"
import type { TestPostgres } from "./support/postgres.mjs"

/*
 * `plinth serve --cluster` end to end, as an operator meets it: a real
 * Postgres, two runners (the bundled CLI) over the same plugin root and lock,
 * each with its own HTTP port, runner port and data directory; jobs submitted
 * through one are seen completing through the other; a third runner whose
 * plugins differ from theirs refuses to join and never serves; SIGTERM stops
 * both.
 */

interface Runner {
  readonly child: ChildProcess
  readonly dataDir: string
  readonly stdout: () => string
  readonly stderr: () => string
  readonly exited: Promise<number | null>
}

const inherited = () => Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== "NO_COLOR" && !name.startsWith("PLINTH_")))

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as AddressInfo).port
      server.close(() => resolve(port))
    })
  })

/** Starts `plinth serve --cluster` in `dir` with `args`; `ready` waits until it serves (server.json, "listening on"). */
const startRunner = (dir: string, dataDir: string, args: ReadonlyArray<string>, env: Record<string, string> = {}): Runner => {
  const child = spawn(process.execPath, [bin, "serve", "--cluster", "--port", "0", "--data-dir", dataDir, ...args], {
    cwd: dir,
    env: { ...inherited(), ...env },
    stdio: ["ignore", "pipe", "pipe"],
  })
  let stdout = ""
  let stderr = ""
  child.stdout!.on("data", (chunk) => (stdout += chunk))
  child.stderr!.on("data", (chunk) => (stderr += chunk))
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  return { child, dataDir, stdout: () => stdout, stderr: () => stderr, exited }
}

const ready = async (runner: Runner) => {
  const deadline = Date.now() + 30_000
  while (!existsSync(join(runner.dataDir, "serve", "server.json")) || !runner.stdout().includes("listening on")) {
    if (runner.child.exitCode !== null) throw new Error(`plinth serve --cluster exited ${runner.child.exitCode}: ${runner.stderr()}`)
    if (Date.now() > deadline) throw new Error(`plinth serve --cluster did not start: ${runner.stderr()}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return runner
}

const until = async <A>(what: string, get: () => Promise<A>, done: (value: A) => boolean, timeoutMillis = 20_000): Promise<A> => {
  const deadline = Date.now() + timeoutMillis
  for (;;) {
    const value = await get()
    if (done(value)) return value
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value)}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** The digest a runner joins with: over every plugin its lock pins (Membership.ts). */
const lockDigest = (lockFile: string) =>
  codeDigest(
    Object.entries((JSON.parse(readFileSync(lockFile, "utf8")) as { plugins: Record<string, { digest: string }> }).plugins).map(([plugin, { digest }]) => ({
      plugin,
      digest,
    })),
  )

let postgres: TestPostgres | undefined
let database: string
let dir: string
let a: Runner
let b: Runner
const ports: Array<number> = []
/** Jobs submitted through a while b was joining the cluster. */
const whileJoining: Array<string> = []
const started: Array<Runner> = []

beforeAll(async () => {
  buildCli()
  postgres = await startPostgres()
  // Trust authentication ignores the password: it is there to be hidden from the startup lines.
  database = postgres.createDatabase("serve_cluster").replace("postgres@", "postgres:hunter2@")
  dir = examplesWorkspace("plinth-serve-cluster-")
  ports.push(await freePort(), await freePort(), await freePort())
  // One takes the database from the flag, the other from the environment, as an operator keeping it off the command line would.
  a = await ready(startRunner(dir, join(dir, "a"), ["--database", database, "--runner-address", `127.0.0.1:${ports[0]}`]))
  started.push(a)
  // b joins a running cluster while jobs keep coming: some fall in the shards it takes as it joins.
  const token = readFileSync(join(a.dataDir, "serve", "token"), "utf8").trim()
  const aUrl = (JSON.parse(readFileSync(join(a.dataDir, "serve", "server.json"), "utf8")) as { url: string }).url
  const instances = ["greeter", "case-tools", "text-tools", "word-count"]
  const input: Record<string, unknown> = { greeter: { name: "Ada" }, "case-tools": { text: "a b", to: "camel" }, "text-tools": { text: "a b" }, "word-count": { text: "a b" } }
  const actions: Record<string, string> = { greeter: "greet", "case-tools": "convert", "text-tools": "reverse", "word-count": "count" }
  b = startRunner(dir, join(dir, "b"), ["--runner-address", `127.0.0.1:${ports[1]}`], { PLINTH_DATABASE_URL: database })
  started.push(b)
  const joining = ready(b)
  let joined = false
  void joining.then(() => (joined = true), () => (joined = true))
  while (!joined) {
    for (const instance of instances) {
      const response = await fetch(`${aUrl}/api/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ instance, action: actions[instance], input: input[instance] }),
      })
      expect(response.status, await response.clone().text()).toBe(201)
      whileJoining.push(((await response.json()) as { id: string }).id)
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  await joining
}, 90_000)

afterAll(() => {
  for (const runner of started) if (runner.child.exitCode === null) runner.child.kill("SIGKILL")
  postgres?.stop()
})

describe("plinth serve --cluster", () => {
  it("says at start that it is a runner of a cluster: its address and the database, without the password", () => {
    expect(a.stdout()).toContain(`cluster: runner 127.0.0.1:${ports[0]} of the cluster in ${database.replace("hunter2", "***")}`)
    expect(b.stdout()).toContain(`cluster: runner 127.0.0.1:${ports[1]} of the cluster in`)
    for (const runner of [a, b]) {
      expect(runner.stdout() + runner.stderr()).not.toContain("hunter2")
      expect(runner.stdout()).toContain("dashboard: http://127.0.0.1:")
    }
  })

  it("takes no job before its plugins run: every job submitted while a runner joined completes", async () => {
    expect(whileJoining.length).toBeGreaterThan(0)
    const url = (JSON.parse(readFileSync(join(a.dataDir, "serve", "server.json"), "utf8")) as { url: string }).url
    const ended = await Promise.all(
      whileJoining.map((id) =>
        until(`job ${id}`, async () => (await (await fetch(`${url}/api/jobs/${id}`)).json()) as { status: string; error?: unknown }, (job) =>
          ["completed", "failed", "cancelled"].includes(job.status),
        ),
      ),
    )
    expect(ended.filter((job) => job.status !== "completed")).toEqual([])
  })

  it("runs jobs submitted through one runner, which plinth jobs show and list through the other see completed", async () => {
    const submit = (runner: Runner, plugin: string, action: string, input: unknown) =>
      plinth(dir, ["jobs", "submit", plugin, action, "--input", JSON.stringify(input), "--data-dir", runner.dataDir]).then((run) => {
        expect(run.code, run.stderr).toBe(0)
        return run.stdout.trim()
      })
    // Through a, to be seen through b; and the other way round.
    const throughA = await Promise.all(["Ada", "Bo", "Cy"].map((name) => submit(a, "greeter", "greet", { name })))
    const throughB = [await submit(b, "showcase", "slow", { millis: 200 })]
    for (const id of [...throughA, ...throughB]) expect(id).toMatch(/^job-/)

    const show = async (runner: Runner, id: string) => {
      const run = await plinth(dir, ["jobs", "show", id, "--json", "--data-dir", runner.dataDir])
      expect(run.code, run.stderr).toBe(0)
      return JSON.parse(run.stdout)
    }
    // Waiting is done over HTTP, which is cheaper than a plinth process per look; what is checked is what plinth jobs shows.
    const url = (runner: Runner) => (JSON.parse(readFileSync(join(runner.dataDir, "serve", "server.json"), "utf8")) as { url: string }).url
    const completed = (runner: Runner, id: string) =>
      until(`job ${id} through ${runner.dataDir}`, async () => (await (await fetch(`${url(runner)}/api/jobs/${id}`)).json()) as { status: string }, (job) => job.status === "completed")
    await Promise.all([...throughA.map((id) => completed(b, id)), ...throughB.map((id) => completed(a, id))])

    const shown = await Promise.all([...throughA.map((id) => show(b, id)), ...throughB.map((id) => show(a, id))])
    expect(shown.map((body) => [body.ok, body.job.status, body.job.result])).toEqual([
      [true, "completed", "Hello, Ada!"],
      [true, "completed", "Hello, Bo!"],
      [true, "completed", "Hello, Cy!"],
      [true, "completed", { waitedMillis: 200 }],
    ])
    for (const runner of [a, b]) {
      const listed = await plinth(dir, ["jobs", "list", "--json", "--data-dir", runner.dataDir])
      expect(listed.code, listed.stderr).toBe(0)
      const history = JSON.parse(listed.stdout).history as Array<{ id: string; status: string }>
      for (const id of [...throughA, ...throughB]) expect(history.find((job) => job.id === id)?.status, `${id} in ${runner.dataDir}`).toBe("completed")
    }
  })

  it("refuses a runner whose plugins differ from the cluster's, naming both digests, before it serves", async () => {
    const tampered = mkdtempSync(join(tmpdir(), "plinth-serve-cluster-tampered-"))
    cpSync(join(dir, "plugins"), join(tampered, "plugins"), { recursive: true })
    appendFileSync(join(tampered, "plugins", "greeter", "index.js"), "\n// changed on this host only\n")
    const relocked = await plinth(tampered, ["plugins", "lock"])
    expect(relocked.code, relocked.stderr).toBe(0)
    const clusterDigest = lockDigest(join(dir, "PLUGINS.lock"))
    const runnerDigest = lockDigest(join(tampered, "PLUGINS.lock"))
    expect(runnerDigest).not.toBe(clusterDigest)

    const third = startRunner(tampered, join(tampered, ".plinth"), ["--runner-address", `127.0.0.1:${ports[2]}`], { PLINTH_DATABASE_URL: database })
    started.push(third)
    expect(await third.exited).toBe(4)
    const lines = third.stderr().trim().split("\n")
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^refused: /)
    expect(lines[0]).toContain(`lock digest ${runnerDigest}`)
    expect(lines[0]).toContain(clusterDigest)
    expect(lines[0]).toContain(`127.0.0.1:${ports[0]}`)
    expect(third.stdout()).not.toContain("listening on")
    expect(existsSync(join(tampered, ".plinth", "serve", "server.json"))).toBe(false)
    // The cluster runs on as before.
    const run = await plinth(dir, ["jobs", "watch", (await plinth(dir, ["jobs", "submit", "greeter", "greet", "--input", '{"name":"Di"}', "--data-dir", b.dataDir])).stdout.trim(), "--data-dir", a.dataDir])
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toContain("Hello, Di!")
  })

  it("refuses in one line a runner port in use and a database that is not there (exit 1), and a runner without an address (exit 2)", async () => {
    const taken = createServer()
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve))
    const port = (taken.address() as AddressInfo).port
    try {
      const busy = await plinth(dir, ["serve", "--cluster", "--port", "0", "--data-dir", join(dir, "busy"), "--runner-address", `127.0.0.1:${port}`], {
        PLINTH_DATABASE_URL: database,
      })
      expect(busy.code).toBe(1)
      expect(busy.stderr.trim()).toBe(
        `error: cannot listen for other runners on 127.0.0.1:${port}: the address is in use (another runner on this host?); pass another --runner-address or --runner-listen`,
      )
      expect(existsSync(join(dir, "busy", "serve", "server.json"))).toBe(false)
    } finally {
      taken.close()
    }
    const nowhere = `postgres://postgres:hunter2@127.0.0.1:${await freePort()}/plinth`
    const down = await plinth(dir, ["serve", "--cluster", "--port", "0", "--data-dir", join(dir, "down"), "--database", nowhere, "--runner-address", "127.0.0.1:7718"])
    expect(down.code).toBe(1)
    expect(down.stderr.trim().split("\n")).toHaveLength(1)
    expect(down.stderr).toMatch(new RegExp(`^error: the cluster database postgres://postgres:\\*\\*\\*@127\\.0\\.0\\.1:\\d+/plinth is not usable \\(.+\\): check that Postgres runs there`))
    expect(down.stderr).not.toContain("hunter2")
    const usage = await plinth(dir, ["serve", "--cluster", "--database", database])
    expect(usage.code).toBe(2)
    expect(usage.stderr).toContain("--cluster needs --runner-address HOST:PORT")
    expect(usage.stderr).not.toContain("hunter2")
  })

  it("stops both runners on SIGTERM: exit 130, server.json removed, on stderr only the plugin that did not start and the cluster's warnings, one line each", async () => {
    a.child.kill("SIGTERM")
    b.child.kill("SIGTERM")
    const codes = await Promise.all([a.exited, b.exited])
    for (const [i, runner] of [a, b].entries()) {
      expect(codes[i], runner.stderr()).toBe(130)
      expect(existsSync(join(runner.dataDir, "serve", "server.json"))).toBe(false)
      expect(
        runner
          .stderr()
          .trim()
          .split("\n")
          // On a busy machine @effect/cluster may warn, say, of a slow shard lock query: one line each, no stack.
          .filter((line) => line !== "" && !line.includes("vault-demo did not start") && !/^cluster (warning|error|fatal): [^\n]+$/.test(line)),
      ).toEqual([])
    }
  })
})
