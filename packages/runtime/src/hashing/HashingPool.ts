/**
 * Part of the Hashing module: a small fixed pool of hashing worker threads
 * that join big batches alongside the main thread.
 *
 * - The pool starts lazily, only when a batch proves big enough to pay.
 * - Workers are unreferenced unless someone awaits them, so the pool never
 *   keeps a process alive, and they are terminated after a quiet spell.
 * - When the worker script is absent (code run from TypeScript sources) or a
 *   worker cannot start, hashing stays on the main thread: slower, never wrong.
 */
import { existsSync } from "node:fs"
import { createRequire } from "node:module"
import { availableParallelism } from "node:os"
import { fileURLToPath } from "node:url"
import type { Worker } from "node:worker_threads"
import { joinPaths, type SharedBatch } from "./HashingCore.js"
import type { BatchLeft, JoinBatch } from "./HashingWorker.js"

/** What awaiting a helper yields: its share of the batch, or `"lost"` if it died first. */
export type HelperOutcome = BatchLeft | "lost"

interface Helper {
  readonly worker: Worker
  /** Batches posted to this worker that it has not left yet. */
  readonly joined: Map<number, (outcome: HelperOutcome) => void>
  awaited: number
}

const IDLE_TERMINATE_MS = 10_000

const workerScriptPath = fileURLToPath(new URL("./HashingWorker.js", import.meta.url))

/** The main thread hashes too, so one helper per remaining core; a few at most, as storage bandwidth caps the gain. */
// Loaded when the first helper starts: a small batch never starts one, and loading worker_threads
// is ~1 ms of every `plinth` start otherwise (ADR 0018).
const loadWorker = (): typeof Worker => (createRequire(import.meta.url)("node:worker_threads") as typeof import("node:worker_threads")).Worker

export const defaultHelperCount = (): number => Math.max(0, Math.min(availableParallelism() - 1, 3))

let helpers: Array<Helper> = []
let broken = false
let nextBatchId = 1
let idleTimer: NodeJS.Timeout | undefined

/** Whether helpers can be used at all in this process. */
export const poolAvailable = (): boolean => !broken && defaultHelperCount() > 0 && existsSync(workerScriptPath)

const forget = (helper: Helper) => {
  helpers = helpers.filter((h) => h !== helper)
  for (const settle of helper.joined.values()) settle("lost")
  helper.joined.clear()
}

/** The host's Node flags, minus those a worker refuses (it would die at start-up with `--input-type`). */
const workerExecArgv = () =>
  process.execArgv.filter((flag, i, all) => !flag.startsWith("--input-type") && all[i - 1] !== "--input-type")

const startHelper = (): Helper | undefined => {
  let worker: Worker
  try {
    worker = new (loadWorker())(workerScriptPath, { name: "plinth-hashing", execArgv: workerExecArgv() })
  } catch {
    broken = true
    return undefined
  }
  const helper: Helper = { worker, joined: new Map(), awaited: 0 }
  worker.on("message", (left: BatchLeft) => {
    const settle = helper.joined.get(left.batchId)
    helper.joined.delete(left.batchId)
    settle?.(left)
    scheduleIdleTermination()
  })
  worker.on("error", () => {
    // A worker that fails is not restarted in a loop: the main thread carries on alone.
    broken = true
    forget(helper)
  })
  worker.on("exit", () => forget(helper))
  // After the listeners: adding a "message" listener refs the worker's port again, and a ref'd
  // port kept every process that hashed a big tree alive until the idle timer ended the pool.
  worker.unref()
  return helper
}

const scheduleIdleTermination = () => {
  if (idleTimer !== undefined) clearTimeout(idleTimer)
  idleTimer = setTimeout(() => {
    idleTimer = undefined
    if (helpers.every((h) => h.joined.size === 0)) void terminateHashingPool()
  }, IDLE_TERMINATE_MS)
  idleTimer.unref()
}

/** Stops every helper now; the next big batch starts them again. */
export const terminateHashingPool = async (): Promise<void> => {
  const stopping = helpers
  helpers = []
  await Promise.all(stopping.map((h) => h.worker.terminate().then(() => forget(h))))
}

/** A batch as shared with helpers: awaiting it waits for every helper that joined to leave it. */
export interface HelpedBatch {
  readonly helperCount: number
  /** Resolves once every helper has left the batch; keeps the process alive only while awaited. */
  readonly awaitHelpers: (onDone: (outcomes: ReadonlyArray<HelperOutcome>) => void) => () => void
}

/** Posts the batch to every helper (starting them if needed). */
export const enlistHelpers = (paths: ReadonlyArray<string>, batch: SharedBatch): HelpedBatch => {
  const wanted = defaultHelperCount()
  while (poolAvailable() && helpers.length < wanted) {
    const helper = startHelper()
    if (helper === undefined) break
    helpers.push(helper)
  }
  const batchId = nextBatchId++
  const message: JoinBatch = { batchId, joinedPaths: joinPaths(paths), control: batch.control, digests: batch.digests, bytes: batch.bytes }
  const enlisted = helpers.slice()
  const outcomes = enlisted.map(
    (helper) =>
      new Promise<HelperOutcome>((resolve) => {
        helper.joined.set(batchId, resolve)
        helper.worker.postMessage(message)
      }),
  )
  return {
    helperCount: enlisted.length,
    awaitHelpers: (onDone) => {
      let cancelled = false
      for (const helper of enlisted) if (helper.awaited++ === 0) helper.worker.ref()
      const release = () => {
        for (const helper of enlisted) if (--helper.awaited === 0) helper.worker.unref()
      }
      void Promise.all(outcomes).then((all) => {
        if (cancelled) return
        cancelled = true
        release()
        onDone(all)
      })
      return () => {
        if (cancelled) return
        cancelled = true
        release()
      }
    },
  }
}
