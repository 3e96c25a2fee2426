import os from "node:os"
import { syncBuiltinESMExports } from "node:module"

/*
 * Node's permission model does not cover signals: without this, plugin code
 * could `process.kill(process.ppid, "SIGKILL")` its host, or
 * `process._debugProcess(pid)`, which sends SIGUSR1 and makes a Node host open
 * its inspector (then anything that reaches 127.0.0.1 runs code in the host).
 * This replaces every route to another process that plugin code can reach,
 * before any plugin code is linked; the originals stay in this closure only.
 * Reached under the permission model and closed here:
 *   process.kill, process._kill, process._debugProcess, os.setPriority;
 *   process.binding is refused by the permission model itself, internalBinding
 *   is not reachable without --expose-internals, child processes and worker
 *   threads are refused unless the manifest grants them.
 * A plugin may still signal itself (process.kill(process.pid, ...)). The guard
 * covers this thread only: a worker thread has its own `process.kill` and a
 * child process can run `kill`, so the workerThreads and childProcess grants
 * give signals back (in the OS tier the pid namespace still hides the host).
 */

/** A refused attempt to act on another process; the runtime reports it as SandboxDenied "signal". */
export class SignalDenied extends Error {
  readonly code = "ERR_ACCESS_DENIED"
  readonly permission = "Signal"
  constructor(readonly resource: string) {
    super(`signalling another process is not allowed (${resource})`)
    this.name = "SignalDenied"
  }
}

const lock = (target: object, name: string, value: unknown) =>
  Object.defineProperty(target, name, { value, writable: false, configurable: false, enumerable: false })

/** Installs the guards; call once, before plugin code runs. */
export const guardSignals = (): void => {
  const self = process.pid
  const own = (pid: unknown) => {
    const n = Number(pid)
    return Number.isInteger(n) && n === self
  }
  const originalKill = process.kill.bind(process)
  const originalRawKill = (process as unknown as { _kill: (pid: number, signal: number) => number })._kill.bind(process)
  lock(process, "kill", (pid: number, signal?: string | number) => {
    if (!own(pid)) throw new SignalDenied(`pid ${String(pid)}`)
    return originalKill(pid, signal)
  })
  lock(process, "_kill", (pid: number, signal: number) => {
    if (!own(pid)) throw new SignalDenied(`pid ${String(pid)}`)
    return originalRawKill(pid, signal)
  })
  lock(process, "_debugProcess", (pid: number) => {
    throw new SignalDenied(`debug pid ${String(pid)}`)
  })
  const originalSetPriority = os.setPriority.bind(os)
  lock(os, "setPriority", (pidOrPriority: number, priority?: number) => {
    if (priority === undefined) return originalSetPriority(pidOrPriority)
    if (pidOrPriority !== 0 && !own(pidOrPriority)) throw new SignalDenied(`priority of pid ${String(pidOrPriority)}`)
    return originalSetPriority(pidOrPriority, priority)
  })
  // ESM importers of node:os see the guarded function too.
  syncBuiltinESMExports()
}
