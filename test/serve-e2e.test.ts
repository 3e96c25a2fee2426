import { spawn, type ChildProcess } from "node:child_process"
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs"
import { request } from "node:http"
import { createServer, type AddressInfo } from "node:net"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { bin, buildCli, examplesWorkspace, plinth } from "./support/cli.js"
import { isAlive } from "./support/processes.js"

/*
 * `plinth serve` end to end, as an operator and a script meet it: a real
 * server process (the bundled CLI) over a copy of the example plugins on a
 * free port, driven over HTTP and through `plinth jobs`, then stopped with
 * SIGTERM. Real workers, a real journal, a real event stream.
 */

interface Server {
  readonly child: ChildProcess
  readonly url: string
  readonly stdout: () => string
  readonly stderr: () => string
  readonly exited: Promise<number | null>
}

const inherited = () => Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== "NO_COLOR" && !name.startsWith("PLINTH_")))

/** Starts `plinth serve --port 0` in `dir` and waits until its server.json names it. */
const startServer = async (dir: string): Promise<Server> => {
  const child = spawn(process.execPath, [bin, "serve", "--port", "0"], { cwd: dir, env: inherited(), stdio: ["ignore", "pipe", "pipe"] })
  let stdout = ""
  let stderr = ""
  child.stdout!.on("data", (chunk) => (stdout += chunk))
  child.stderr!.on("data", (chunk) => (stderr += chunk))
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  const info = join(dir, ".plinth", "serve", "server.json")
  const deadline = Date.now() + 60_000
  while (!existsSync(info) || !stdout.includes("listening on")) {
    if (child.exitCode !== null) throw new Error(`plinth serve exited ${child.exitCode}: ${stderr}`)
    if (Date.now() > deadline) throw new Error(`plinth serve did not start: ${stderr}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const { url, pid } = JSON.parse(readFileSync(info, "utf8")) as { url: string; pid: number }
  expect(pid).toBe(child.pid)
  return { child, url, stdout: () => stdout, stderr: () => stderr, exited }
}

/** Every descendant pid of `pid`, read from /proc while they run. */
const descendants = (pid: number): Array<number> => {
  const found: Array<number> = []
  const walk = (parent: number) => {
    let tasks: Array<string> = []
    try {
      tasks = readdirSync(`/proc/${parent}/task`)
    } catch {
      return
    }
    for (const task of tasks) {
      let children: Array<number> = []
      try {
        children = readFileSync(`/proc/${parent}/task/${task}/children`, "utf8").split(" ").filter(Boolean).map(Number)
      } catch {}
      for (const child of children) {
        found.push(child)
        walk(child)
      }
    }
  }
  walk(pid)
  return found
}

const until = async <A>(what: string, get: () => Promise<A>, done: (value: A) => boolean, timeoutMillis = 30_000): Promise<A> => {
  const deadline = Date.now() + timeoutMillis
  for (;;) {
    const value = await get()
    if (done(value)) return value
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value)}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

let dir: string
let server: Server
let token: string

const getJson = async (path: string, init: RequestInit = {}) => {
  const response = await fetch(`${server.url}${path}`, init)
  return { status: response.status, body: (await response.json()) as any }
}
/** A POST with the server's token, another token, or (null) none. */
const post = (path: string, body: unknown, auth: string | null = token) =>
  getJson(path, {
    method: "POST",
    headers: { "content-type": "application/json", ...(auth !== null ? { authorization: `Bearer ${auth}` } : {}) },
    body: JSON.stringify(body),
  })
const job = async (id: string) => (await getJson(`/api/jobs/${id}`)).body

beforeAll(async () => {
  buildCli()
  dir = examplesWorkspace("plinth-serve-")
  server = await startServer(dir)
  token = readFileSync(join(dir, ".plinth", "serve", "token"), "utf8").trim()
}, 90_000)

afterAll(() => {
  if (server !== undefined && server.child.exitCode === null) server.child.kill("SIGKILL")
})

describe("plinth serve", () => {
  it("prints the dashboard URL with the token once, and keeps the token 0600 in a 0700 folder", () => {
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(server.stdout()).toContain(`${server.url}/#token=${token}`)
    expect(server.stdout()).toContain("printed this once")
    expect(statSync(join(dir, ".plinth", "serve")).mode & 0o777).toBe(0o700)
    expect(statSync(join(dir, ".plinth", "serve", "token")).mode & 0o777).toBe(0o600)
    expect(statSync(join(dir, ".plinth", "serve", "server.json")).mode & 0o777).toBe(0o600)
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
  })

  it("lists the verified plugins and the running instances, without their configs", async () => {
    const plugins = await getJson("/api/plugins")
    expect(plugins.status).toBe(200)
    const greeter = plugins.body.plugins.find((p: any) => p.id === "greeter")
    expect(greeter).toMatchObject({ id: "greeter", version: "1.0.0", lock: "verified" })
    expect(greeter.digest).toMatch(/^h1:/)
    const instances = await getJson("/api/instances")
    const running = instances.body.instances.find((i: any) => i.id === "greeter")
    expect(running).toMatchObject({ plugin: "greeter", enabled: true })
    expect(running.pid).toBeGreaterThan(0)
    expect(running.rssBytes).toBeGreaterThan(10 * 1024 * 1024)
    expect(instances.body.instances.every((i: any) => !("config" in i))).toBe(true)
    // A plugin whose required secret is missing does not stop the others from serving.
    expect(server.stderr()).toContain("vault-demo did not start")
  })

  it("refuses a POST without the token or with a wrong one (401), and requests naming another host (403)", async () => {
    const body = { instance: "greeter", action: "greet", input: { name: "Ada" } }
    const none = await post("/api/jobs", body, null)
    expect(none.status).toBe(401)
    expect(none.body.error).toContain("token")
    expect((await post("/api/jobs", body, `${token.slice(0, -1)}${token.endsWith("A") ? "B" : "A"}`)).status).toBe(401)
    expect((await post(`/api/jobs/job-0/cancel`, {}, "nope")).status).toBe(401)
    // fetch will not send another Host; a page whose DNS name was rebound to 127.0.0.1 would.
    const rebound = await new Promise<number | undefined>((resolve, reject) =>
      request(`${server.url}/api/plugins`, { headers: { host: "attacker.example:80" } }, (response) => {
        response.resume()
        resolve(response.statusCode)
      })
        .on("error", reject)
        .end(),
    )
    expect(rebound).toBe(403)
    expect((await getJson("/api/jobs")).body.stats.pending + (await getJson("/api/jobs")).body.stats.running).toBe(0)
  })

  it("answers a bad body with a one-line 400, and an unknown job with 404", async () => {
    const notJson = await getJson("/api/jobs", { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: "{nope" })
    expect(notJson.status).toBe(400)
    expect(notJson.body.error).toContain("not JSON")
    const missing = await post("/api/jobs", { instance: "greeter" })
    expect(missing.status).toBe(400)
    expect(missing.body.error).toMatch(/^bad request: action/)
    expect(missing.body.error).not.toContain("\n")
    const unknown = await post("/api/jobs", { instance: "nope", action: "greet", input: {} })
    expect(unknown.status).toBe(400)
    expect(unknown.body.error).toContain("nope")
    const absent = await getJson("/api/jobs/job-00000000000000000000000000")
    expect(absent.status).toBe(404)
    expect(absent.body.error).toContain("no job")
  })

  it("runs a submitted job to completed, and streams its events", async () => {
    const controller = new AbortController()
    const response = await fetch(`${server.url}/api/events`, { signal: controller.signal })
    expect(response.headers.get("content-type")).toContain("text/event-stream")
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
    let text = ""
    const read = async (done: () => boolean) => {
      while (!done()) {
        const chunk = await reader.read()
        if (chunk.done) break
        text += chunk.value
      }
    }
    await read(() => text.includes(": connected"))
    const submitted = await post("/api/jobs", { instance: "showcase", action: "slow", input: { millis: 300 } })
    expect(submitted.status).toBe(201)
    const id = submitted.body.id as string
    const finished = await until("the job", () => job(id), (j) => j.status === "completed")
    expect(finished.result).toEqual({ waitedMillis: 300 })
    await read(() => text.includes(`"to":"completed"`) && text.includes(id))
    controller.abort()
    const events = text
      .split("\n\n")
      .filter((frame) => frame.startsWith("event: job"))
      .map((frame) => JSON.parse(frame.split("\ndata: ")[1]!))
      .filter((event) => event.job === id)
    expect(events[0]).toMatchObject({ _tag: "submitted", instance: "showcase", action: "slow" })
    expect(events.filter((e) => e._tag === "stateChanged").map((e) => e.to)).toEqual(["running", "completed"])
    expect(events.some((e) => e._tag === "progressChanged")).toBe(true)
  })

  it("cancels a pending job at once: it never runs", async () => {
    const first = (await post("/api/jobs", { instance: "showcase", action: "slow", input: { millis: 1500 } })).body.id as string
    const second = (await post("/api/jobs", { instance: "showcase", action: "slow", input: { millis: 10 } })).body.id as string
    expect((await job(second)).status).toBe("pending")
    expect((await post(`/api/jobs/${second}/priority`, { priority: 7 })).body).toEqual({ reordered: true })
    expect((await job(second)).priority).toBe(7)
    expect((await post(`/api/jobs/${second}/cancel`, {})).body).toEqual({ cancelled: true })
    const cancelled = await job(second)
    expect(cancelled.status).toBe("cancelled")
    expect(cancelled.startedAt).toBeUndefined()
    expect((await post(`/api/jobs/${second}/cancel`, {})).body).toEqual({ cancelled: false })
    await until("the first job", () => job(first), (j) => j.status === "completed")
    expect((await job(second)).startedAt).toBeUndefined()
  })

  it("runs a sequence step after step, and refuses a sequence change without the token", async () => {
    const steps = [
      { instance: "greeter", action: "greet", input: { name: "Ada" } },
      { instance: "greeter", action: "greet", input: { name: "Bo" } },
    ]
    expect((await post("/api/sequences", { steps }, null)).status).toBe(401)
    const submitted = await post("/api/sequences", { steps, mode: "failFast" })
    expect(submitted.status).toBe(201)
    const id = submitted.body.id as string
    const done = await until("the sequence", async () => (await getJson(`/api/sequences/${id}`)).body, (s) => s.status === "completed")
    expect(done.results.map((r: any) => r.result)).toEqual(["Hello, Ada!", "Hello, Bo!"])
    expect((await post(`/api/sequences/${id}/cancel`, {})).body).toEqual({ cancelled: false })
    expect((await getJson("/api/sequences/seq-00000000000000000000000000")).status).toBe(404)
  })

  it("serves its OpenAPI document and the dashboard's page, and nothing outside its assets", async () => {
    const spec = await getJson("/openapi.json")
    expect(spec.status).toBe(200)
    expect(Object.keys(spec.body.paths)).toEqual(expect.arrayContaining(["/api/plugins", "/api/jobs", "/api/jobs/{id}", "/api/sequences", "/api/events"]))
    const page = await fetch(`${server.url}/`)
    expect(page.status).toBe(200)
    expect(page.headers.get("content-type")).toContain("text/html")
    expect(await page.text()).toContain("<html")
    for (const path of ["/assets/..%2Fpackage.json", "/assets/package.json", "/assets/%2E%2E%2Fsrc%2FServer.ts"]) {
      const response = await fetch(`${server.url}${path}`)
      expect(response.status, path).toBe(404)
      expect(await response.text()).not.toContain("@plinth/server")
    }
  })

  it("is driven by plinth jobs submit, list, show and watch, which exit with the job's outcome", async () => {
    const submitted = await plinth(dir, ["jobs", "submit", "greeter", "greet", "--input", '{"name":"Ada"}'])
    expect(submitted.code).toBe(0)
    const id = submitted.stdout.trim()
    expect(id).toMatch(/^job-/)
    const watched = await plinth(dir, ["jobs", "watch", id])
    expect(watched.code).toBe(0)
    expect(watched.stdout).toContain("completed")
    expect(watched.stdout).toContain("Hello, Ada!")
    const shown = await plinth(dir, ["jobs", "show", id, "--json"])
    expect(JSON.parse(shown.stdout)).toMatchObject({ ok: true, job: { id, status: "completed", result: "Hello, Ada!" } })
    const listed = await plinth(dir, ["jobs", "list", "--json"])
    expect(JSON.parse(listed.stdout).history.map((j: any) => j.id)).toContain(id)
    // A job that fails ends watch with its failure's exit code: an input error is 5.
    const bad = (await plinth(dir, ["jobs", "submit", "showcase", "slow", "--input", "{}"])).stdout.trim()
    const failed = await plinth(dir, ["jobs", "watch", bad, "--json"])
    expect(failed.code).toBe(5)
    expect(JSON.parse(failed.stdout.trim().split("\n").at(-1)!)).toMatchObject({ ok: false, error: { _tag: "JobUnsuccessful", status: "failed" } })
    const unknown = await plinth(dir, ["jobs", "show", "job-00000000000000000000000000"])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr.trim().split("\n")).toHaveLength(1)
    // Another data directory has no server: one line saying so.
    const elsewhere = await plinth(dir, ["jobs", "list", "--data-dir", join(dir, "other")])
    expect(elsewhere.code).toBe(1)
    expect(elsewhere.stderr.trim()).toBe(`error: no plinth serve is running for data dir ${join(dir, "other")}: start one with plinth serve`)
  })

  it("refuses a port in use in one line, before starting any worker", async () => {
    const taken = createServer()
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve))
    const port = (taken.address() as AddressInfo).port
    try {
      const run = await plinth(dir, ["serve", "--port", String(port), "--data-dir", join(dir, "busy")])
      expect(run.code).toBe(1)
      expect(run.stderr.trim()).toBe(`error: cannot listen on 127.0.0.1:${port}: the address is in use (another plinth serve?); pass another --port (0 picks a free one) or --host`)
      expect(existsSync(join(dir, "busy", "serve", "server.json"))).toBe(false)
    } finally {
      taken.close()
    }
  })

  it("stops on SIGTERM with every worker stopped and server.json removed, and does not print the token again on the next start", async () => {
    const instances = (await getJson("/api/instances")).body.instances as Array<{ pid?: number }>
    const workers = instances.flatMap((i) => (i.pid !== undefined ? [i.pid, ...descendants(i.pid)] : []))
    expect(workers.length).toBeGreaterThanOrEqual(5)
    expect(workers.every(isAlive)).toBe(true)
    server.child.kill("SIGTERM")
    expect(await server.exited).toBe(130)
    expect(workers.filter(isAlive)).toEqual([])
    expect(existsSync(join(dir, ".plinth", "serve", "server.json"))).toBe(false)

    server = await startServer(dir)
    expect(server.stdout()).not.toContain(token)
    expect(server.stdout()).toContain(join(".plinth", "serve", "token"))
    // The journal kept the history across the restart.
    expect((await getJson("/api/jobs")).body.history.length).toBeGreaterThan(0)
    server.child.kill("SIGINT")
    expect(await server.exited).toBe(130)
  })
})
