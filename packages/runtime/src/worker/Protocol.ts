import { Either, ParseResult, Schema } from "effect"
import { ActionDeclaration, JsonSchemaDocument, PluginFailure, ProtocolError } from "@plinth/domain"

/*
 * The host <-> worker protocol: plain structured-clone messages over the IPC
 * channel (`serialization: "advanced"`), validated with these Schemas on both
 * sides. Anything that does not decode is a typed ProtocolError, never a crash.
 * ADR 0010 records why this is not @effect/rpc.
 */

const CallId = Schema.Int.pipe(Schema.nonNegative())

export const VerifiedFile = Schema.Struct({ path: Schema.String, bytes: Schema.Uint8ArrayFromSelf })
export type VerifiedFile = typeof VerifiedFile.Type

// ---- host -> worker --------------------------------------------------------

export class Load extends Schema.TaggedClass<Load>()("Load", {
  plugin: Schema.String,
  entry: Schema.String,
  files: Schema.Array(VerifiedFile),
  config: Schema.Unknown,
  env: Schema.Array(Schema.String),
  dataDir: Schema.NullOr(Schema.String),
}) {}

export class Invoke extends Schema.TaggedClass<Invoke>()("Invoke", {
  id: CallId,
  action: Schema.String,
  input: Schema.Unknown,
  streaming: Schema.Boolean,
}) {}

export class Interrupt extends Schema.TaggedClass<Interrupt>()("Interrupt", { id: CallId }) {}

export class Shutdown extends Schema.TaggedClass<Shutdown>()("Shutdown", {}) {}

export const HostMessage = Schema.Union(Load, Invoke, Interrupt, Shutdown)
export type HostMessage = typeof HostMessage.Type

// ---- worker -> host --------------------------------------------------------

export const Declaration = Schema.Struct({
  actions: Schema.Record({ key: Schema.String, value: ActionDeclaration }),
  config: JsonSchemaDocument,
})

export class Ready extends Schema.TaggedClass<Ready>()("Ready", { pid: Schema.Int }) {}
export class Loaded extends Schema.TaggedClass<Loaded>()("Loaded", { declaration: Declaration }) {}
export class LoadFailed extends Schema.TaggedClass<LoadFailed>()("LoadFailed", { error: PluginFailure }) {}
export class Success extends Schema.TaggedClass<Success>()("Success", { id: CallId, value: Schema.Unknown }) {}
export class Chunk extends Schema.TaggedClass<Chunk>()("Chunk", { id: CallId, value: Schema.Unknown }) {}
export class End extends Schema.TaggedClass<End>()("End", { id: CallId }) {}
export class Failure extends Schema.TaggedClass<Failure>()("Failure", { id: CallId, error: PluginFailure }) {}
export class Progress extends Schema.TaggedClass<Progress>()("Progress", {
  id: CallId,
  fraction: Schema.Number,
  message: Schema.optional(Schema.String),
}) {}
export class Interrupted extends Schema.TaggedClass<Interrupted>()("Interrupted", { id: CallId }) {}
/** The worker's answer to a message it could not decode. */
export class Rejected extends Schema.TaggedClass<Rejected>()("Rejected", { detail: Schema.String }) {}

export const WorkerMessage = Schema.Union(Ready, Loaded, LoadFailed, Success, Chunk, End, Failure, Progress, Interrupted, Rejected)
export type WorkerMessage = typeof WorkerMessage.Type

const formatError = (error: ParseResult.ParseError) => ParseResult.TreeFormatter.formatErrorSync(error)

const decoder =
  <A, I>(schema: Schema.Schema<A, I, never>, side: string) =>
  (raw: unknown): Either.Either<A, ProtocolError> => {
    try {
      return Either.mapLeft(
        Schema.decodeUnknownEither(schema, { onExcessProperty: "error" })(raw),
        (error) => new ProtocolError({ detail: `${side} message rejected: ${formatError(error)}` }),
      )
    } catch (defect) {
      // A hostile object (throwing getter, proxy) must not take the receiver down.
      return Either.left(new ProtocolError({ detail: `${side} message rejected: ${String(defect)}` }))
    }
  }

export const decodeHostMessage = decoder(HostMessage, "host")
export const decodeWorkerMessage = decoder(WorkerMessage, "worker")

export const encodeHostMessage = Schema.encodeSync(HostMessage)
export const encodeWorkerMessage = Schema.encodeSync(WorkerMessage)
