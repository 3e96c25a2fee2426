// What the dashboard's browser test and its screenshot share: how Chromium is
// launched on this offline machine, and a real `plinth serve` to point it at.
import { spawn } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..")

/** Debian's `chromium` package; `.ci/run` installs it. */
export const chromiumPath = process.env.PLINTH_CHROMIUM ?? "/usr/bin/chromium"

/** Headless, and without the background connections (updates, sync, QUIC probes) that fail offline and slow the start. */
export const chromiumArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
]

/** Chromium through playwright-core; a clear error when it is not installed. */
export const launchChromium = async () => {
  if (!existsSync(chromiumPath)) {
    throw new Error(`no Chromium at ${chromiumPath}: install the Debian package (apt-get install chromium, as .ci/run does) or set PLINTH_CHROMIUM`)
  }
  const { chromium } = await import("playwright-core")
  return chromium.launch({ executablePath: chromiumPath, args: chromiumArgs })
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const readJson = (path) => {
  try {
    return JSON.parse(readFileSync(path, "utf8"))
  } catch {
    return undefined
  }
}

/**
 * `plinth serve --port 0` in `cwd` (plugins in `plugins/`, the lock in
 * `PLUGINS.lock`), data in `dataDir`. Resolves once `<dataDir>/serve/server.json`
 * names it, with its URL and token; `stop()` ends it with SIGTERM, as an operator would.
 */
export const startServe = async ({ cwd, dataDir, args = [], timeoutMillis = 60_000 }) => {
  const child = spawn(
    process.execPath,
    [join(repo, "packages/cli/bin/plinth.js"), "serve", "--root", "plugins", "--lock", "PLUGINS.lock", "--data-dir", dataDir, "--port", "0", ...args],
    { cwd, env: Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("PLINTH_") && name !== "NO_COLOR")), stdio: ["ignore", "pipe", "pipe"] },
  )
  let stdout = ""
  let stderr = ""
  child.stdout.setEncoding("utf8").on("data", (text) => (stdout += text))
  child.stderr.setEncoding("utf8").on("data", (text) => (stderr += text))
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })))
  let done = false
  void exited.then(() => (done = true))

  const stop = async () => {
    if (!done) child.kill("SIGTERM")
    const outcome = await Promise.race([exited, sleep(15_000).then(() => undefined)])
    if (outcome === undefined) {
      child.kill("SIGKILL")
      return exited
    }
    return outcome
  }

  const deadline = Date.now() + timeoutMillis
  for (;;) {
    const server = readJson(join(dataDir, "serve/server.json"))
    const token = existsSync(join(dataDir, "serve/token")) ? readFileSync(join(dataDir, "serve/token"), "utf8").trim() : ""
    if (server !== undefined && typeof server.url === "string" && token !== "") {
      return { url: server.url.replace(/\/$/, ""), token, pid: child.pid, stop, output: () => ({ stdout, stderr }) }
    }
    if (done || Date.now() > deadline) {
      await stop()
      throw new Error(`plinth serve did not start${done ? "" : ` within ${timeoutMillis} ms`}:\n${stderr || stdout}`)
    }
    await sleep(100)
  }
}

/** A POST to the API with the server's token; resolves with the status and the JSON body. */
export const post = async (server, path, body) => {
  const response = await fetch(`${server.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${server.token}` },
    body: JSON.stringify(body),
  })
  return { status: response.status, body: await response.json() }
}
