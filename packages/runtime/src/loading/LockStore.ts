import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import { Context, Data, Effect, Either, Layer } from "effect"
import { decodeLockFile, encodeLockFile, lockCaps, LockFileMalformed, LockFileMissing, type LockFile } from "@plinth/domain"
import { readRegularFileText } from "./RegularFile.js"

export class LockWriteFailed extends Data.TaggedError("LockWriteFailed")<{
  readonly path: string
  readonly detail: string
}> {}

/** Reads and atomically writes `PLUGINS.lock`. */
export class LockStore extends Context.Tag("@plinth/runtime/LockStore")<
  LockStore,
  {
    /** Fails with `LockFileMissing` when nothing is at `path`, `LockFileMalformed` when what is there is not a lock. */
    readonly read: (path: string) => Effect.Effect<LockFile, LockFileMalformed | LockFileMissing>
    /** Writes a temporary file beside the lock, then renames it over: readers see the old or the new lock, never half. */
    readonly write: (path: string, lock: LockFile) => Effect.Effect<void, LockWriteFailed>
  }
>() {}

const malformed = (path: string, detail: string) => new LockFileMalformed({ path, detail })

/**
 * Reads and decodes the lock at `path`, synchronously (it is small; see
 * RegularFile.ts), keeping the text it decoded (a report copies it byte for
 * byte). `root`, when given, lets a missing lock's message name the command
 * that creates it.
 */
export const readLockText = (
  path: string,
  root?: string,
): Effect.Effect<{ readonly text: string; readonly lock: LockFile }, LockFileMalformed | LockFileMissing> =>
  Effect.gen(function* () {
    // A folder, FIFO or device is refused like a missing file, without blocking on it.
    const text = yield* readRegularFileText(path, lockCaps.maxChars).pipe(
      Effect.mapError((e) => (e.missing ? new LockFileMissing({ path, ...(root !== undefined ? { root } : {}) }) : malformed(path, e.detail))),
    )
    const lock = yield* Either.mapLeft(decodeLockFile(text), (detail) => malformed(path, detail))
    return { text, lock }
  })

const readLockFile = (path: string): Effect.Effect<LockFile, LockFileMalformed | LockFileMissing> =>
  Effect.map(readLockText(path), ({ lock }) => lock)

export const LockStoreLive = Layer.effect(
  LockStore,
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const paths = yield* Path.Path
    return LockStore.of({
      read: readLockFile,
      write: (path, lock) =>
        Effect.gen(function* () {
          const temporary = paths.join(paths.dirname(path), `.${paths.basename(path)}.${process.pid}.${Date.now()}.tmp`)
          yield* fs.writeFileString(temporary, encodeLockFile(lock))
          yield* fs.rename(temporary, path).pipe(Effect.tapError(() => fs.remove(temporary).pipe(Effect.ignore)))
        }).pipe(Effect.mapError((e) => new LockWriteFailed({ path, detail: e.message }))),
    })
  }),
)

/**
 * A lock store that reads as `LockStoreLive` does and never writes: for a run
 * that only verifies (`VerifyLive`), which so needs no FileSystem service
 * (evaluating @effect/platform's Node file system is ~2-3 ms of a start; ADR 0018).
 */
export const readOnlyLockStore = LockStore.of({
  read: readLockFile,
  write: (path) => Effect.fail(new LockWriteFailed({ path, detail: "this run only verifies; it does not write locks" })),
})

export const LockStoreReadOnly = Layer.succeed(LockStore, readOnlyLockStore)

/**
 * Reads the lock a command was given. A missing lock names the plugin root
 * too, so its explanation can give the exact command that creates the lock.
 */
export const readLock = (options: { readonly root: string; readonly lock: string }) =>
  Effect.flatMap(LockStore, (store) => store.read(options.lock)).pipe(
    Effect.catchTag("LockFileMissing", (missing) => Effect.fail(new LockFileMissing({ path: missing.path, root: options.root }))),
  )
