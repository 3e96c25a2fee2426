import { spawn, type ChildProcess } from "node:child_process"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { tempDir } from "./plugins.js"

/*
 * Cluster runner processes for the cluster tests: each is
 * test/support/clusterRunner.mjs (PlinthHost + JobQueueCluster) on its own
 * runner port and data directory, sharing one Postgres database.
 */

const runnerScript = join(import.meta.dirname, "clusterRunner.mjs")

export interface RunnerProcess {
  readonly port: number
  readonly process: ChildProcess
  /** Everything it printed on stdout and stderr. */
  readonly output: () => string
  /** Resolves with "ready", or with the refusal line's JSON when it may not join (it then exits 3). */
  readonly started: Promise<{ readonly _tag: "ready" } | { readonly _tag: "refused"; readonly error: Record<string, unknown> }>
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
  readonly kill: (signal?: NodeJS.Signals) => void
}

let nextPort = 36_000 + Math.floor(Math.random() * 20_000)

export const startRunner = (options: {
  readonly root: string
  readonly lock: string
  readonly database: string
  readonly port?: number
  readonly concurrency?: number
  readonly dataDir?: string
  /** The plugins whose default instance it loads; default showcase. */
  readonly plugins?: ReadonlyArray<string>
  /** Added to this process's environment. */
  readonly env?: Readonly<Record<string, string>>
}): RunnerProcess => {
  const port = options.port ?? nextPort++
  const dataDir = options.dataDir ?? tempDir("plinth-runner-")
  const child = spawn(process.execPath, [runnerScript, options.root, options.lock, dataDir, options.database, String(port), String(options.concurrency ?? 4), (options.plugins ?? ["showcase"]).join(",")], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...options.env },
  })
  let output = ""
  child.stderr!.on("data", (data: Buffer) => (output += data.toString()))
  const started = new Promise<{ _tag: "ready" } | { _tag: "refused"; error: Record<string, unknown> }>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      output += line + "\n"
      if (line.startsWith("ready ")) resolve({ _tag: "ready" })
      if (line.startsWith("refused ")) resolve({ _tag: "refused", error: JSON.parse(line.slice("refused ".length)) as Record<string, unknown> })
    })
    child.on("close", (code, signal) => reject(new Error(`runner ${port} ended before it was ready (${code ?? signal}): ${output}`)))
  })
  started.catch(() => undefined)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("close", (code, signal) => resolve({ code, signal })))
  return {
    port,
    process: child,
    output: () => output,
    started,
    exited,
    kill: (signal = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    },
  }
}
