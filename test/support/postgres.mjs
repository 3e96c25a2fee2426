import { execFileSync } from "node:child_process"
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

/*
 * A throwaway PostgreSQL server for tests: `initdb` and `pg_ctl` from the
 * Debian package (`.ci/run` installs it) in a temporary directory, listening on
 * 127.0.0.1 only, on a free port. As root (CI), the server runs as the
 * `postgres` user, which needs the directory to be its own.
 */


const binDir = () => {
  const root = "/usr/lib/postgresql"
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => existsSync(join(root, v, "bin", "initdb"))).sort((a, b) => Number(b) - Number(a))
    if (versions[0] !== undefined) return join(root, versions[0], "bin")
  }
  throw new Error("PostgreSQL is not installed: install the Debian package postgresql (.ci/run does)")
}

const freePort = () =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const isRoot = () => typeof process.getuid === "function" && process.getuid() === 0

const asServerUser = (command, args) =>
  isRoot() ? ["runuser", ["-u", "postgres", "--", command, ...args]] : [command, [...args]]

const run = (command, args) => {
  const [file, argv] = asServerUser(command, args)
  return execFileSync(file, argv, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })
}

/** @returns {Promise<import("./postgres.d.mts").TestPostgres>} */
export const startPostgres = async () => {
  const bin = binDir()
  const base = mkdtempSync(join(tmpdir(), "plinth-pg-"))
  const data = join(base, "data")
  const socketDir = join(base, "socket")
  if (isRoot()) {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim())
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim())
    chownSync(base, uid, gid)
  }
  chmodSync(base, 0o755)
  run(join(bin, "initdb"), ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
  run("mkdir", ["-p", socketDir])
  const port = await freePort()
  const options = `-p ${port} -h 127.0.0.1 -k ${socketDir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`
  const start = () => run(join(bin, "pg_ctl"), ["-D", data, "-l", join(base, "server.log"), "-o", options, "-w", "-t", "30", "start"])
  const stopNow = (mode) => {
    try {
      run(join(bin, "pg_ctl"), ["-D", data, "-m", mode, "-w", "-t", "30", "stop"])
    } catch {
      // already stopped
    }
  }
  start()
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`
  let stopped = false
  return {
    url,
    port,
    createDatabase: (name) => {
      run(join(bin, "createdb"), ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", name])
      return `postgres://postgres@127.0.0.1:${port}/${name}`
    },
    restart: async (options) => {
      stopNow("immediate")
      await new Promise((resolve) => setTimeout(resolve, options?.downMillis ?? 0))
      start()
    },
    stop: () => {
      if (stopped) return
      stopped = true
      stopNow("fast")
      rmSync(base, { recursive: true, force: true })
    },
  }
}
