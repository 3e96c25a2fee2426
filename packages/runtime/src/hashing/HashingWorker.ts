/**
 * Part of the Hashing module: the entry point of a hashing worker thread.
 * It joins batches posted by `HashingPool`, hashing files claimed from the
 * shared batch until none are left, then reports back.
 */
import { parentPort } from "node:worker_threads"
import { hashClaimedFiles, makeReadBuffer, splitPaths, type SharedBatch, type ThreadShare } from "./HashingCore.js"

export interface JoinBatch {
  readonly batchId: number
  readonly joinedPaths: string
  readonly control: Int32Array
  readonly digests: Uint8Array
  readonly bytes: BigInt64Array
}

export interface BatchLeft extends ThreadShare {
  readonly batchId: number
}

const buffer = makeReadBuffer()

parentPort?.on("message", (message: JoinBatch) => {
  const batch: SharedBatch = { control: message.control, digests: message.digests, bytes: message.bytes }
  const share = hashClaimedFiles(splitPaths(message.joinedPaths), batch, buffer)
  const reply: BatchLeft = { batchId: message.batchId, ...share }
  parentPort?.postMessage(reply)
})
