// Installs the five packages as a user would and runs the CLI there.
//
//   node scripts/check-packages.mjs [--no-build] [--keep]
//
// Packs @plinth/domain, @plinth/runtime, @plinth/cluster, @plinth/server and @plinth/cli (`npm pack`), installs
// the tarballs into a fresh temporary project (dependencies from the
// registry), copies the example plugins (with any node_modules/ inside them)
// and runs `npx plinth plugins lock`, `verify` and `invoke` there. It checks
// that the installed copy runs the bundled CLI and the bundled worker, not the
// slower unbundled fallbacks (ADR 0018), that each package imports as a
// library, and that `plinth serve --cluster` loads the cluster's code (it is
// pointed at a database that is not there: no Postgres needed). `.ci/run` calls it after `npm test`; `--no-build` skips `npm run build`.
import { execFileSync, spawn } from "node:child_process"
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const repo = join(dirname(fileURLToPath(import.meta.url)), "..")
const args = new Set(process.argv.slice(2))
const started = Date.now()
const step = (line) => console.log(`check-packages: ${line} (${((Date.now() - started) / 1000).toFixed(1)} s)`)
const fail = (line) => {
  console.error(`check-packages: FAILED: ${line}`)
  process.exitCode = 1
  throw new Error(line)
}
// No V8 flags from the caller: they would make V8 refuse the shipped code caches.
const env = { ...process.env, NODE_OPTIONS: "", npm_config_audit: "false", npm_config_fund: "false", npm_config_update_notifier: "false" }
const run = (command, commandArgs, cwd) => execFileSync(command, commandArgs, { cwd, env, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] })

const work = mkdtempSync(join(tmpdir(), "plinth-packages-"))
const project = join(work, "project")
try {
  if (!args.has("--no-build")) {
    step("npm run build")
    run("npm", ["run", "--silent", "build"], repo)
  }

  step("npm pack")
  const tarballs = join(work, "tarballs")
  mkdirSync(tarballs)
  run("npm", ["pack", "--silent", "--pack-destination", tarballs, "--workspace", "packages/domain", "--workspace", "packages/runtime", "--workspace", "packages/cluster", "--workspace", "packages/server", "--workspace", "packages/cli"], repo)
  const packed = readdirSync(tarballs).filter((name) => name.endsWith(".tgz")).map((name) => join(tarballs, name))
  if (packed.length !== 5) fail(`expected 5 tarballs, got ${packed.join(", ")}`)

  step(`npm install ${packed.map((file) => file.slice(tarballs.length + 1)).join(" ")}`)
  mkdirSync(project)
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "plinth-install-check", private: true, type: "module" }, null, 2))
  run("npm", ["install", "--silent", "--no-package-lock", ...packed], project)
  const installed = (name) => join(project, "node_modules", "@plinth", name)

  // Everything the examples hold, their own node_modules/ included (a plugin may ship its dependencies).
  cpSync(join(repo, "examples", "plugins"), join(project, "plugins"), { recursive: true, verbatimSymlinks: true })

  step("each package imports as a library")
  run(
    process.execPath,
    ["--input-type=module", "-e", 'for (const name of ["@plinth/domain", "@plinth/runtime", "@plinth/cluster", "@plinth/server", "@plinth/cli"]) if (Object.keys(await import(name)).length === 0) throw new Error(`${name} exports nothing`)'],
    project,
  )

  // The launcher's fallback is the unbundled dist/bin.js: with it moved away, only the bundle can answer.
  const unbundledCli = join(installed("cli"), "dist", "bin.js")
  renameSync(unbundledCli, `${unbundledCli}.away`)
  try {
    const plinth = (...plinthArgs) => run("npx", ["--no-install", "plinth", ...plinthArgs], project)
    step("npx plinth --version")
    const version = plinth("--version")
    const expected = JSON.parse(readFileSync(join(installed("cli"), "package.json"), "utf8")).version
    if (version !== `${expected}\n`) fail(`plinth --version printed ${JSON.stringify(version)}, expected ${JSON.stringify(`${expected}\n`)}`)
    step("npx plinth plugins lock")
    plinth("plugins", "lock", "--root", "plugins", "--lock", "PLUGINS.lock")
    step("npx plinth plugins verify")
    process.stdout.write(plinth("plugins", "verify", "--root", "plugins", "--lock", "PLUGINS.lock"))
    step("npx plinth plugins invoke greeter greet")
    const { output, workers } = await invokeWatchingWorkers(project, ["--no-install", "plinth", "plugins", "invoke", "--root", "plugins", "--lock", "PLUGINS.lock", "greeter", "greet", "--input", '{"name":"Ada"}'])
    process.stdout.write(output)
    if (output.trim() !== '"Hello, Ada!"') fail(`invoke printed ${JSON.stringify(output)}`)
    const bundled = join(installed("runtime"), "dist", "worker-bundle", "bootstrap.cjs")
    const unbundled = join(installed("runtime"), "dist", "process", "bootstrap.js")
    if (workers.some((argv) => argv.includes(unbundled))) fail(`a worker ran the unbundled runtime (${unbundled})`)
    if (!workers.some((argv) => argv.includes(bundled))) fail(`no worker was seen running the bundled runtime (${bundled})`)
    step(`the bundled CLI and the bundled worker ran (${workers.length} worker process${workers.length === 1 ? "" : "es"} seen)`)
    step("plinth serve: the API and the dashboard's page from the installed packages, then SIGTERM")
    await serveOnce(project)
    step("plinth serve --cluster: the cluster bundle, @plinth/cluster and pg load, and refuse a database that is not there")
    clusterOnce(project)
  } finally {
    renameSync(`${unbundledCli}.away`, unbundledCli)
  }
  step("ok")
} catch (error) {
  if (process.exitCode !== 1) console.error(`check-packages: FAILED: ${error.message}`)
  process.exitCode = 1
} finally {
  if (args.has("--keep")) console.log(`check-packages: kept ${work}`)
  else rmSync(work, { recursive: true, force: true })
}

/**
 * Runs a command and, while it runs, reads the command line of every process
 * on the machine that mentions the project: a worker lives for the whole call
 * (a hundred milliseconds or more), far longer than the 5 ms between looks.
 */
function invokeWatchingWorkers(cwd, commandArgs) {
  return new Promise((resolve, reject) => {
    const seen = new Map()
    const look = () => {
      for (const pid of readdirSync("/proc")) {
        if (!/^\d+$/.test(pid) || seen.has(pid)) continue
        try {
          const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")
          if (argv.some((arg) => arg.includes(cwd) && arg.includes("bootstrap"))) seen.set(pid, argv)
        } catch {
          // Gone already.
        }
      }
    }
    const timer = setInterval(look, 5)
    const child = spawn("npx", commandArgs, { cwd, env, stdio: ["ignore", "pipe", "inherit"] })
    let output = ""
    child.stdout.on("data", (chunk) => (output += chunk))
    child.on("error", reject)
    child.on("close", (code) => {
      clearInterval(timer)
      if (code !== 0) reject(new Error(`plinth plugins invoke exited with ${code}`))
      else resolve({ output, workers: [...seen.values()] })
    })
  })
}

/**
 * Starts the installed `plinth serve` on a free port, reads its plugins and
 * its page (the assets are found through the installed @plinth/server), and
 * stops it with SIGTERM: it must exit 130 and remove its server.json.
 */
async function serveOnce(cwd) {
  const child = spawn(process.execPath, [join(cwd, "node_modules", ".bin", "plinth"), "serve", "--port", "0", "--root", "plugins", "--lock", "PLUGINS.lock"], {
    cwd,
    env,
    stdio: ["ignore", "ignore", "inherit"],
  })
  const exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)))
  const info = join(cwd, ".plinth", "serve", "server.json")
  try {
    const deadline = Date.now() + 60_000
    while (!existsSync(info)) {
      if (child.exitCode !== null) fail(`plinth serve exited ${child.exitCode} before listening`)
      if (Date.now() > deadline) fail("plinth serve did not start within 60 s")
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const { url } = JSON.parse(readFileSync(info, "utf8"))
    const plugins = await (await fetch(`${url}/api/plugins`)).json()
    if (!plugins.plugins.some((plugin) => plugin.id === "greeter" && plugin.lock === "verified")) fail(`GET /api/plugins answered ${JSON.stringify(plugins)}`)
    const page = await fetch(`${url}/`)
    if (page.status !== 200 || !(await page.text()).includes("<html")) fail(`GET / answered ${page.status}`)
  } finally {
    child.kill("SIGTERM")
  }
  const code = await exited
  if (code !== 130) fail(`plinth serve exited ${code} on SIGTERM, expected 130`)
  if (existsSync(info)) fail("plinth serve left its server.json behind")
}

/**
 * Runs the installed `plinth serve --cluster` against a port where no Postgres
 * listens: it must load the second bundle, @plinth/cluster and pg (installed
 * as the CLI's dependencies), and exit 1 with the one-line message about the
 * database, never an unexpected error.
 */
function clusterOnce(cwd) {
  const database = "postgres://plinth:not-shown@127.0.0.1:1/plinth"
  let result
  try {
    execFileSync(
      process.execPath,
      [join(cwd, "node_modules", ".bin", "plinth"), "serve", "--cluster", "--port", "0", "--runner-address", "127.0.0.1:7718", "--root", "plugins", "--lock", "PLUGINS.lock", "--data-dir", ".plinth-cluster"],
      { cwd, env: { ...env, PLINTH_DATABASE_URL: database }, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
    )
    result = { status: 0, stderr: "" }
  } catch (error) {
    result = { status: error.status, stderr: String(error.stderr) }
  }
  const expected = "error: the cluster database postgres://plinth:***@127.0.0.1:1/plinth is not usable"
  if (result.status !== 1 || !result.stderr.startsWith(expected) || result.stderr.includes("not-shown"))
    fail(`plinth serve --cluster exited ${result.status} with ${JSON.stringify(result.stderr)}, expected 1 and '${expected} …'`)
}
