import { spawn } from "node:child_process"
import type { Socket } from "node:net"
import { stripVTControlCharacters } from "node:util"
import { Context, Effect, Layer } from "effect"
import { CHANNEL_FD } from "../wire/Framing.js"
import { makeLineCapture, type WorkerOutputLine } from "./OutputLines.js"

export type { WorkerOutputLine } from "./OutputLines.js"

/** What the host needs from a started child process; tests can hand back their own. */
export interface ChildProcessHandle {
  readonly pid: number | undefined
  /** Writes bytes to the worker's channel; a closed channel drops them (the exit listener reports why). */
  readonly write: (bytes: Buffer) => void
  /** Called with the bytes the worker writes to its channel, as they arrive (trusted for nothing: see WorkerConnection). */
  readonly onData: (listener: (chunk: Buffer) => void) => void
  /** Called once, when the process has exited (immediately if it already has). */
  readonly onExit: (listener: (exit: ProcessExit) => void) => void
  /** The last few KiB (at most STDERR_TAIL_CHARS characters) the process wrote to stderr, terminal control sequences removed. */
  readonly stderrTail: () => string
  /**
   * Called with each line the process writes to stdout or stderr, from now on
   * (OutputLines.ts: cleaned, cut when over-long, dropped past a rate). Optional:
   * a handle that does not capture output leaves it out.
   */
  readonly onOutput?: (listener: (line: WorkerOutputLine) => void) => void
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
  /** Arguments after the module path (the worker reads its frame caps there). */
  readonly args?: ReadonlyArray<string>
  readonly env: Readonly<Record<string, string>>
  readonly cwd: string
}

/** Starts worker processes. A service so that tests (and other hosts) can substitute how. */
export class ProcessSpawner extends Context.Tag("@plinth/runtime/ProcessSpawner")<
  ProcessSpawner,
  { readonly spawn: (request: SpawnRequest) => Effect.Effect<ChildProcessHandle> }
>() {}

/** What a failure carries of a worker's stderr: its end, where the cause usually is. */
export const STDERR_TAIL_CHARS = 4096
/** Kept raw, more than the tail, so that colour codes removed later still leave a full tail. */
const STDERR_KEPT_CHARS = 4 * STDERR_TAIL_CHARS

/** The end of what a process wrote to stderr, as text a failure can carry: no escape sequences, capped. */
export const stderrTailOf = (raw: string): string => stripVTControlCharacters(raw).slice(-STDERR_TAIL_CHARS)

/**
 * Node started with one extra stdio stream, the channel (a socketpair at the
 * child's fd 3, see wire/Framing.ts), optionally through a launcher program
 * (which passes the fd on by inheritance). No Node IPC channel: the child has
 * no `process.send`.
 */
export const spawnWorkerProcess = (request: SpawnRequest): ChildProcessHandle => {
  const node = [process.execPath, ...request.execArgv, request.modulePath, ...(request.args ?? [])]
  const argv = [...(request.launcher ?? []), ...node]
  const stdio: Array<"ignore" | "pipe"> = ["ignore", "pipe", "pipe", "pipe"]
  const child = spawn(argv[0]!, argv.slice(1), { env: { ...request.env }, cwd: request.cwd, stdio })
  const channel = child.stdio[CHANNEL_FD] as Socket | null
  // A worker that exits early closes its end; the exit listener reports why, not a write error.
  channel?.on("error", () => {})
  const dataListeners: Array<(chunk: Buffer) => void> = []
  channel?.on("data", (chunk: Buffer) => {
    for (const listener of dataListeners) listener(chunk)
  })
  const outputListeners: Array<(line: WorkerOutputLine) => void> = []
  const lines = makeLineCapture(child.pid, (line) => {
    for (const listener of outputListeners) listener(line)
  })
  let stderr = ""
  child.stderr?.setEncoding("utf8")
  child.stderr?.on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-STDERR_KEPT_CHARS)
    lines.stderr.push(chunk)
  })
  child.stderr?.on("end", () => lines.stderr.end())
  child.stdout?.setEncoding("utf8")
  child.stdout?.on("data", (chunk: string) => lines.stdout.push(chunk))
  child.stdout?.on("end", () => lines.stdout.end())
  let exit: ProcessExit | undefined
  const exitListeners: Array<(exit: ProcessExit) => void> = []
  const settle = (value: ProcessExit) => {
    if (exit !== undefined) return
    exit = value
    for (const listener of exitListeners.splice(0)) listener(value)
  }
  // 'close' (not 'exit') so that stderr is fully read before anyone asks for its tail.
  child.on("close", (exitCode, signal) => {
    lines.close()
    settle({ exitCode, signal })
  })
  child.on("error", (error) => {
    stderr += `\n${error.message}`
    if (child.pid === undefined) settle({ exitCode: null, signal: null })
  })
  return {
    pid: child.pid,
    write: (bytes) => {
      if (channel !== null && exit === undefined && !channel.destroyed) channel.write(bytes)
    },
    onData: (listener) => void dataListeners.push(listener),
    onExit: (listener) => (exit !== undefined ? listener(exit) : void exitListeners.push(listener)),
    stderrTail: () => stderrTailOf(stderr),
    onOutput: (listener) => void outputListeners.push(listener),
    kill: (signal) => void (exit === undefined && child.kill(signal)),
  }
}

export const ProcessSpawnerLive = Layer.succeed(ProcessSpawner, {
  spawn: (request) => Effect.sync(() => spawnWorkerProcess(request)),
})
