import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import { Context, Data, Effect, Either, Layer, Schema } from "effect"
import { decodeJsonText } from "@plinth/domain"

/** One recorded call to a plugin action. */
export const CallRecord = Schema.Struct({
  at: Schema.String,
  plugin: Schema.String,
  instance: Schema.String,
  action: Schema.String,
  durationMs: Schema.Number,
  outcome: Schema.Literal("ok", "failed", "interrupted"),
  /** The error taxonomy category when the call failed. */
  category: Schema.optional(Schema.String),
  message: Schema.optional(Schema.String),
  /** How many items a streaming call produced. */
  items: Schema.optional(Schema.Number),
  /** Which attempt this was, for a call the manager retried after eviction (1 for the first). */
  attempt: Schema.optional(Schema.Number),
})
export type CallRecord = typeof CallRecord.Type

export class TraceUnavailable extends Data.TaggedError("TraceUnavailable")<{ readonly path: string; readonly detail: string }> {}

/** The recorded call history of recent runs, kept in a local JSON-lines file. */
export class CallTrace extends Context.Tag("@plinth/runtime/CallTrace")<
  CallTrace,
  {
    readonly record: (call: CallRecord) => Effect.Effect<void, TraceUnavailable>
    /** The most recent calls, oldest first; lines that do not decode are skipped and counted. */
    readonly recent: (limit: number) => Effect.Effect<{ readonly calls: ReadonlyArray<CallRecord>; readonly skipped: number }, TraceUnavailable>
  }
>() {}

const recordCaps = { maxChars: 64 * 1024, maxDepth: 4 } as const
/** The file is trimmed back to this many calls when it grows past twice as many. */
export const TRACE_KEEP = 1000

export const defaultTracePath = ".plinth/trace.jsonl"

export const CallTraceLive = (file: string = defaultTracePath) =>
  Layer.effect(
    CallTrace,
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const unavailable = (e: { readonly message: string }) => new TraceUnavailable({ path: file, detail: e.message })
      const readLines = fs.readFileString(file).pipe(
        Effect.map((text) => text.split("\n").filter((line) => line.length > 0)),
        Effect.catchIf((e) => e._tag === "SystemError" && e.reason === "NotFound", () => Effect.succeed([] as Array<string>)),
        Effect.mapError(unavailable),
      )
      return CallTrace.of({
        record: (call) =>
          Effect.gen(function* () {
            yield* fs.makeDirectory(path.dirname(file), { recursive: true })
            yield* fs.writeFileString(file, JSON.stringify(Schema.encodeSync(CallRecord)(call)) + "\n", { flag: "a" })
            const lines = yield* readLines
            if (lines.length > 2 * TRACE_KEEP) {
              const temporary = `${file}.${process.pid}.tmp`
              yield* fs.writeFileString(temporary, lines.slice(-TRACE_KEEP).join("\n") + "\n")
              yield* fs.rename(temporary, file)
            }
          }).pipe(Effect.mapError((e) => (e instanceof TraceUnavailable ? e : unavailable(e)))),
        recent: (limit) =>
          Effect.map(readLines, (lines) => {
            const calls: Array<CallRecord> = []
            let skipped = 0
            for (const line of lines.slice(-limit)) {
              const decoded = decodeJsonText(CallRecord, line, recordCaps)
              if (Either.isRight(decoded)) calls.push(decoded.right)
              else skipped++
            }
            return { calls, skipped }
          }),
      })
    }),
  )
