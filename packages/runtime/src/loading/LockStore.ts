import { FileSystem, Path } from "@effect/platform"
import { Context, Data, Effect, Either, Layer } from "effect"
import { decodeLockFile, encodeLockFile, lockCaps, LockFileMalformed, type LockFile } from "@plinth/domain"
import { readRegularFileText } from "./RegularFile.js"

export class LockWriteFailed extends Data.TaggedError("LockWriteFailed")<{
  readonly path: string
  readonly detail: string
}> {}

/** Reads and atomically writes `PLUGINS.lock`. */
export class LockStore extends Context.Tag("@plinth/runtime/LockStore")<
  LockStore,
  {
    readonly read: (path: string) => Effect.Effect<LockFile, LockFileMalformed>
    /** Writes a temporary file beside the lock, then renames it over: readers see the old or the new lock, never half. */
    readonly write: (path: string, lock: LockFile) => Effect.Effect<void, LockWriteFailed>
  }
>() {}

export const LockStoreLive = Layer.effect(
  LockStore,
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const paths = yield* Path.Path
    const malformed = (path: string, detail: string) => new LockFileMalformed({ path, detail })
    return LockStore.of({
      read: (path) =>
        Effect.gen(function* () {
          // A folder, FIFO or device is refused like a missing file, without blocking on it.
          const text = yield* readRegularFileText(path, lockCaps.maxChars).pipe(Effect.mapError((e) => malformed(path, e.detail)))
          return yield* Either.mapLeft(decodeLockFile(text), (detail) => malformed(path, detail))
        }),
      write: (path, lock) =>
        Effect.gen(function* () {
          const temporary = paths.join(paths.dirname(path), `.${paths.basename(path)}.${process.pid}.${Date.now()}.tmp`)
          yield* fs.writeFileString(temporary, encodeLockFile(lock))
          yield* fs.rename(temporary, path).pipe(Effect.tapError(() => fs.remove(temporary).pipe(Effect.ignore)))
        }).pipe(Effect.mapError((e) => new LockWriteFailed({ path, detail: e.message }))),
    })
  }),
)
