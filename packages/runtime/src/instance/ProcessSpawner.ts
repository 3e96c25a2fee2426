import { spawn } from "node:child_process"
import type { Socket } from "node:net"
import { Context, Effect, Layer } from "effect"
import { BULK_ARG, BULK_FD, makeReceiver, makeSender } from "../wire/Channel.js"

/** What the host needs from a started child process; tests can hand back their own. */
export interface ChildProcessHandle {
  readonly pid: number | undefined
  /** Sends one message to the worker; a closed channel drops it (the exit listener reports why). */
  readonly send: (message: unknown) => void
  readonly onMessage: (listener: (message: unknown) => void) => void
  /** Called once, when the process has exited (immediately if it already has). */
  readonly onExit: (listener: (exit: ProcessExit) => void) => void
  /** The last few KiB the process wrote to stderr. */
  readonly stderrTail: () => string
  readonly kill: (signal: NodeJS.Signals) => void
}

export interface ProcessExit {
  readonly exitCode: number | null
  readonly signal: string | null
}

export interface SpawnRequest {
  readonly modulePath: string
  /**
   * The program and arguments the Node process is started through, if any
   * (an OS sandbox such as bwrap); Node's own path and arguments follow them.
   */
  readonly launcher?: ReadonlyArray<string>
  readonly execArgv: ReadonlyArray<string>
  readonly env: Readonly<Record<string, string>>
  readonly cwd: string
}

/** Starts worker processes. A service so that tests (and other hosts) can substitute how. */
export class ProcessSpawner extends Context.Tag("@plinth/runtime/ProcessSpawner")<
  ProcessSpawner,
  { readonly spawn: (request: SpawnRequest) => Effect.Effect<ChildProcessHandle> }
>() {}

const STDERR_TAIL_BYTES = 4096

/**
 * Node started like `child_process.fork` (an IPC channel using the default
 * `json` serialization, plus a bulk pipe on fd 4 for large frames, see
 * Channel.ts), optionally through a launcher program.
 */
export const spawnWorkerProcess = (request: SpawnRequest): ChildProcessHandle => {
  const node = [process.execPath, ...request.execArgv, request.modulePath, BULK_ARG]
  const argv = [...(request.launcher ?? []), ...node]
  const child = spawn(argv[0]!, argv.slice(1), {
    env: { ...request.env },
    cwd: request.cwd,
    serialization: "json",
    stdio: ["ignore", "pipe", "pipe", "ipc", "pipe"],
  })
  const bulk = child.stdio[BULK_FD] as Socket | null
  // A worker that exits early closes its end; the exit listener reports why, not a write error.
  bulk?.on("error", () => {})
  const sendFrame = makeSender(
    (frame) => {
      if (child.connected) child.send(frame as never, (error) => void error)
    },
    bulk === null ? undefined : { write: (bytes) => void bulk.write(bytes) },
  )
  const messageListeners: Array<(message: unknown) => void> = []
  const receiver = makeReceiver((frame) => {
    for (const listener of messageListeners) listener(frame)
  })
  child.on("message", receiver.ipc)
  bulk?.on("data", receiver.bulk)
  let stderr = ""
  child.stderr?.setEncoding("utf8")
  child.stderr?.on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-STDERR_TAIL_BYTES)
  })
  child.stdout?.resume()
  let exit: ProcessExit | undefined
  const exitListeners: Array<(exit: ProcessExit) => void> = []
  const settle = (value: ProcessExit) => {
    if (exit !== undefined) return
    exit = value
    for (const listener of exitListeners.splice(0)) listener(value)
  }
  // 'close' (not 'exit') so that stderr is fully read before anyone asks for its tail.
  child.on("close", (exitCode, signal) => settle({ exitCode, signal }))
  child.on("error", (error) => {
    stderr += `\n${error.message}`
    if (child.pid === undefined) settle({ exitCode: null, signal: null })
  })
  return {
    pid: child.pid,
    send: (message) => {
      if (child.connected) sendFrame(message)
    },
    onMessage: (listener) => void messageListeners.push(listener),
    onExit: (listener) => (exit !== undefined ? listener(exit) : void exitListeners.push(listener)),
    stderrTail: () => stderr,
    kill: (signal) => void (exit === undefined && child.kill(signal)),
  }
}

export const ProcessSpawnerLive = Layer.succeed(ProcessSpawner, {
  spawn: (request) => Effect.sync(() => spawnWorkerProcess(request)),
})
