import { WorkerExited, WorkerKilled, WorkerOutOfMemory, type PluginFailure } from "@plinth/domain"
import type { ProcessExit } from "./ProcessSpawner.js"

/*
 * What an unexpected worker exit means for its calls. Through bubblewrap the
 * host sees bwrap's exit, not Node's: a worker killed by a signal comes back as
 * exit code 128 + signal (137 for SIGKILL, 134 for SIGABRT), so both spellings
 * are recognised. A plugin could fake either by exiting with that code; it
 * gains nothing by it (the classification only decides what a caller retries).
 */

/** V8's last words when a heap reaches its cap ("... JavaScript heap out of memory"). */
const HEAP_EXHAUSTED = /heap out of memory|Reached heap limit/

const SIGABRT_CODE = 134
const SIGKILL_CODE = 137

export const workerExitFailure = (options: {
  readonly plugin: string
  readonly exit: ProcessExit
  /** Set when the host killed the worker itself, with its reason. */
  readonly killedByHost: string | undefined
  readonly stderrTail: string
}): PluginFailure => {
  const { plugin, exit, killedByHost } = options
  const fields = { plugin, exitCode: exit.exitCode, signal: exit.signal }
  const stderrTail = options.stderrTail.trim() === "" ? {} : { stderrTail: options.stderrTail }
  if (killedByHost !== undefined) return new WorkerExited({ ...fields, detail: killedByHost, ...stderrTail })
  const aborted = exit.signal === "SIGABRT" || exit.exitCode === SIGABRT_CODE
  if (aborted && HEAP_EXHAUSTED.test(options.stderrTail)) return new WorkerOutOfMemory(fields)
  if (exit.signal === "SIGKILL" || exit.exitCode === SIGKILL_CODE) return new WorkerKilled(fields)
  return new WorkerExited({ ...fields, detail: "the process ended unexpectedly", ...stderrTail })
}
