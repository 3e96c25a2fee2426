import { Context } from "effect"

/** How far hashing has come since the listener was made: files and bytes hashed, and the files to hash in all as far as known. */
export interface HashingProgressSnapshot {
  readonly filesHashed: number
  /** The files planned, or of every batch started so far if more (a tree's files are announced when its hashing starts). */
  readonly filesTotal: number
  readonly bytesHashed: number
}

/**
 * Where the hashing service reports progress. Calls are synchronous and come
 * from inside the hashing loop (which blocks the event loop while it runs),
 * so a listener must be cheap: throttle, then draw.
 */
export interface HashingProgressListener {
  /** False for the default listener: the hashing loop then skips all progress work. */
  readonly active: boolean
  /**
   * The caller knows how many files it will hash in all (a lock's file count,
   * a walk of every plugin done first): the total shown is then this, or what
   * batches announced if that is more.
   */
  readonly planned: (files: number) => void
  /** A batch of `files` files is about to be hashed. */
  readonly batchStarted: (files: number) => void
  /** The current batch advanced by `files` files and `bytes` bytes since the last call. */
  readonly advanced: (files: number, bytes: number) => void
}

const silent: HashingProgressListener = { active: false, planned: () => {}, batchStarted: () => {}, advanced: () => {} }

/**
 * The optional progress channel of the `Hashing` service. Its default hears
 * nothing; a command that shows progress provides a listener for the
 * duration of its work (`Effect.provideService(HashingProgress, …)`).
 */
export class HashingProgress extends Context.Reference<HashingProgress>()("@plinth/runtime/HashingProgress", {
  defaultValue: (): HashingProgressListener => silent,
}) {}

/** A listener that sums every batch into one running snapshot and hands it to `onUpdate` after each change. */
export const hashingProgressListener = (onUpdate: (snapshot: HashingProgressSnapshot) => void): HashingProgressListener => {
  let filesHashed = 0
  let filesAnnounced = 0
  let filesPlanned = 0
  let bytesHashed = 0
  const emit = () => onUpdate({ filesHashed, filesTotal: Math.max(filesPlanned, filesAnnounced), bytesHashed })
  return {
    active: true,
    planned: (files) => {
      filesPlanned += files
    },
    batchStarted: (files) => {
      filesAnnounced += files
      emit()
    },
    advanced: (files, bytes) => {
      filesHashed += files
      bytesHashed += bytes
      emit()
    },
  }
}
