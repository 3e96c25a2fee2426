import { Either, ParseResult, Predicate, Schema, SchemaAST } from "effect"
import { ActionDeclaration, formatSchemaProblems, jsonDepthExceeds, JsonSchemaDocument, maxJsonDepth, OwnRecord, PluginFailure, ProtocolError } from "@plinth/domain"

/*
 * The host <-> worker protocol: JSON messages, one per frame of the channel
 * (Framing.ts), validated with these Schemas on both sides. Anything that
 * does not parse or decode is a typed ProtocolError, never a crash. File
 * bytes cross as base64. ADR 0010 records why this is not @effect/rpc.
 *
 * Messages are tagged structs, not classes: decoding then builds no instance
 * and encoding is the identity for every message except the ones carrying a
 * PluginFailure, so the call path sends plain objects as they are. The
 * envelope is validated here; a call's payload (`input`, `value`) is validated
 * once, by the action's own Schema, on the side that runs or receives it.
 */

const CallId = Schema.Int.pipe(Schema.nonNegative())

export const VerifiedFile = Schema.Struct({ path: Schema.String, bytes: Schema.Uint8ArrayFromBase64 })
export type VerifiedFile = typeof VerifiedFile.Type

// ---- host -> worker --------------------------------------------------------

/**
 * The per-start secret: the host sends it in `Load`, the runtime keeps it
 * before any plugin code is linked, and `Loaded`/`LoadFailed` must carry it,
 * so a frame plugin code forges cannot pass as the handshake (ADR 17).
 */
const Secret = Schema.String

/**
 * One secret the plugin's manifest declares, as the host's secret store holds
 * it (ADR 0026). Only this frame carries values: never argv, the environment
 * or a log line. Not to be confused with `secret`, the handshake's nonce.
 */
export const SecretValue = Schema.Struct({ name: Schema.String, value: Schema.String })
export type SecretValue = typeof SecretValue.Type

export const Load = Schema.TaggedStruct("Load", {
  secret: Secret,
  plugin: Schema.String,
  entry: Schema.String,
  files: Schema.Array(VerifiedFile),
  config: Schema.Unknown,
  env: Schema.Array(Schema.String),
  dataDir: Schema.NullOr(Schema.String),
  secrets: Schema.Array(SecretValue),
})
export type Load = typeof Load.Type

export const Invoke = Schema.TaggedStruct("Invoke", {
  id: CallId,
  action: Schema.String,
  input: Schema.Unknown,
  streaming: Schema.Boolean,
})
export type Invoke = typeof Invoke.Type

/**
 * More credit for a streaming call: the worker may send a chunk while it has
 * at least one chunk and a positive number of bytes of credit (so it may
 * overshoot the byte credit by one chunk). The host grants a window when the
 * call starts and more as its consumer takes chunks; a chunk beyond credit is
 * a protocol error.
 */
export const Credit = Schema.TaggedStruct("Credit", {
  id: CallId,
  chunks: Schema.Int.pipe(Schema.nonNegative()),
  bytes: Schema.Int.pipe(Schema.nonNegative()),
})
export type Credit = typeof Credit.Type

export const Interrupt = Schema.TaggedStruct("Interrupt", { id: CallId })
export type Interrupt = typeof Interrupt.Type

/**
 * Runs the plugin's `onEnable` or `onDisable` hook; the worker answers with
 * Success (value null) or Failure for `id`, like a unary call.
 */
export const Lifecycle = Schema.TaggedStruct("Lifecycle", { id: CallId, hook: Schema.Literal("enable", "disable") })
export type Lifecycle = typeof Lifecycle.Type

export const Shutdown = Schema.TaggedStruct("Shutdown", {})
export type Shutdown = typeof Shutdown.Type

export const HostMessage = Schema.Union(Load, Invoke, Credit, Interrupt, Lifecycle, Shutdown)
export type HostMessage = typeof HostMessage.Type

// ---- worker -> host --------------------------------------------------------

export const Declaration = Schema.Struct({
  // Prototype-free, as in the manifest: an action named "__proto__" is a key like any other, so drift sees it.
  actions: OwnRecord({ key: Schema.String, value: ActionDeclaration }),
  config: JsonSchemaDocument,
})

/**
 * What the worker measured for one call, sent in the call's final frame
 * (Success, End or Failure): the process's CPU time (user + system) while the
 * call ran and its peak resident memory so far. Calls running at once share
 * the process, so each is charged the process's CPU during it. The worker is
 * not trusted to be truthful (a plugin can only mislead the scheduling of its
 * own plugin), only well-formed: finite non-negative numbers.
 */
export const CallUsage = Schema.Struct({
  cpuMs: Schema.Number.pipe(Schema.finite(), Schema.nonNegative()),
  peakRssBytes: Schema.Number.pipe(Schema.finite(), Schema.nonNegative()),
})
export type CallUsage = typeof CallUsage.Type

export const Ready = Schema.TaggedStruct("Ready", { pid: Schema.Int })
export type Ready = typeof Ready.Type
export const Loaded = Schema.TaggedStruct("Loaded", { secret: Secret, declaration: Declaration })
export type Loaded = typeof Loaded.Type
export const LoadFailed = Schema.TaggedStruct("LoadFailed", { secret: Secret, error: PluginFailure })
export type LoadFailed = typeof LoadFailed.Type
export const Success = Schema.TaggedStruct("Success", { id: CallId, value: Schema.Unknown, usage: Schema.optional(CallUsage) })
export type Success = typeof Success.Type
export const Chunk = Schema.TaggedStruct("Chunk", { id: CallId, value: Schema.Unknown })
export type Chunk = typeof Chunk.Type
export const End = Schema.TaggedStruct("End", { id: CallId, usage: Schema.optional(CallUsage) })
export type End = typeof End.Type
export const Failure = Schema.TaggedStruct("Failure", { id: CallId, error: PluginFailure, usage: Schema.optional(CallUsage) })
export type Failure = typeof Failure.Type
export const Progress = Schema.TaggedStruct("Progress", {
  id: CallId,
  fraction: Schema.Number,
  message: Schema.optional(Schema.String),
})
export type Progress = typeof Progress.Type
export const Interrupted = Schema.TaggedStruct("Interrupted", { id: CallId })
export type Interrupted = typeof Interrupted.Type
/** The worker's answer to a message it could not decode. */
export const Rejected = Schema.TaggedStruct("Rejected", { detail: Schema.String })
export type Rejected = typeof Rejected.Type

export const WorkerMessage = Schema.Union(Ready, Loaded, LoadFailed, Success, Chunk, End, Failure, Progress, Interrupted, Rejected)
export type WorkerMessage = typeof WorkerMessage.Type

/** One line, each problem with its path; a protocol error reaches people through `invoke`'s output. */
const formatError = (error: ParseResult.ParseError) => formatSchemaProblems(error).join("; ")

const options = { onExcessProperty: "error" } as const

/**
 * Decoders compiled once. The `_tag` picks the one member Schema to run (the
 * union would try to find it on every message); an unknown tag goes through
 * the union so the error names what was expected. The error tree is only
 * formatted when there is an error.
 */
const decoder = <S extends Schema.Schema<any, any, never> & { readonly members: ReadonlyArray<Schema.Schema<any, any, never>> }>(
  union: S,
  side: string,
  accepts: (raw: unknown) => boolean = () => false,
): ((raw: unknown) => Either.Either<S["Type"], ProtocolError>) => {
  const byTag = new Map<unknown, (raw: unknown) => Either.Either<S["Type"], ParseResult.ParseError>>()
  for (const member of union.members) {
    const tag = SchemaAST.getPropertySignatures(member.ast).find((p) => p.name === "_tag")!.type as SchemaAST.Literal
    byTag.set(tag.literal, Schema.decodeUnknownEither(member, options))
  }
  const decodeUnion = Schema.decodeUnknownEither(union, options)
  return (raw) => {
    try {
      if (accepts(raw)) return Either.right(raw as S["Type"])
      const decode = (Predicate.isRecord(raw) && byTag.get(raw["_tag"])) || decodeUnion
      const result = decode(raw)
      return Either.isRight(result)
        ? (result as Either.Either<S["Type"], never>)
        : Either.left(new ProtocolError({ detail: `${side} message rejected: ${formatError(result.left)}` }))
    } catch (defect) {
      // A hostile object (throwing getter, proxy) must not take the receiver down.
      return Either.left(new ProtocolError({ detail: `${side} message rejected: ${String(defect)}` }))
    }
  }
}

/*
 * The messages of the call path, checked by hand: the Schema decoder costs
 * ~1.5 µs per message here (measured), a few property reads cost next to
 * nothing, and a call's payload is validated by the action's Schema anyway.
 * Each guard accepts exactly what its Schema accepts with excess properties
 * as errors (a safe non-negative integer id; `input`/`value` are Unknown, so
 * missing is allowed) and nothing else; whatever it does not accept goes
 * through the Schema, which decides and explains. The own symbol keys an
 * excess-property check would also reject cannot arrive over JSON; a plain
 * prototype is required, so inherited keys cannot pass either.
 */
const isCallId = (u: unknown): boolean => typeof u === "number" && Number.isSafeInteger(u) && u >= 0

const plainRecord = (raw: unknown): raw is Record<string, unknown> =>
  typeof raw === "object" && raw !== null && Object.getPrototypeOf(raw) === Object.prototype

const onlyKeys = (raw: Record<string, unknown>, allowed: ReadonlySet<string>): boolean => {
  for (const key in raw) if (!allowed.has(key)) return false
  return true
}

const invokeKeys: ReadonlySet<string> = new Set(["_tag", "id", "action", "input", "streaming"])
const isPlainInvoke = (raw: unknown): boolean =>
  plainRecord(raw) &&
  raw["_tag"] === "Invoke" &&
  isCallId(raw["id"]) &&
  typeof raw["action"] === "string" &&
  typeof raw["streaming"] === "boolean" &&
  onlyKeys(raw, invokeKeys)

const isUsageNumber = (u: unknown): boolean => typeof u === "number" && Number.isFinite(u) && u >= 0
const usageKeys: ReadonlySet<string> = new Set(["cpuMs", "peakRssBytes"])
const isPlainUsage = (u: unknown): boolean =>
  plainRecord(u) && isUsageNumber(u["cpuMs"]) && isUsageNumber(u["peakRssBytes"]) && onlyKeys(u, usageKeys)

const chunkKeys: ReadonlySet<string> = new Set(["_tag", "id", "value"])
const successKeys: ReadonlySet<string> = new Set(["_tag", "id", "value", "usage"])
const isPlainResult = (raw: unknown): boolean =>
  plainRecord(raw) &&
  isCallId(raw["id"]) &&
  (raw["_tag"] === "Chunk"
    ? onlyKeys(raw, chunkKeys)
    : raw["_tag"] === "Success" && onlyKeys(raw, successKeys) && (raw["usage"] === undefined || isPlainUsage(raw["usage"])))

export const decodeHostMessage = decoder(HostMessage, "host", isPlainInvoke)
export const decodeWorkerMessage = decoder(WorkerMessage, "worker", isPlainResult)

export const encodeHostMessage = Schema.encodeSync(HostMessage)
export const encodeWorkerMessage = Schema.encodeSync(WorkerMessage)

/**
 * A frame's text to its messages: one message, or a batch (a non-empty JSON
 * array of messages, see Framing.ts). Each message nests no deeper than a
 * call value may be (`maxJsonDepth`) plus the envelope's one level, so
 * everything that gets past here is a JSON value recursive code can walk.
 */
export const parseFrame = (text: string): Either.Either<ReadonlyArray<unknown>, ProtocolError> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    return Either.left(new ProtocolError({ detail: `a frame is not JSON (${error instanceof Error ? error.message : String(error)})` }))
  }
  const messages = Array.isArray(parsed) ? parsed : [parsed]
  if (messages.length === 0) return Either.left(new ProtocolError({ detail: "a frame holds an empty batch" }))
  for (const message of messages) {
    if (jsonDepthExceeds(message, maxJsonDepth + 1)) {
      return Either.left(new ProtocolError({ detail: `a frame nests deeper than ${maxJsonDepth} arrays/objects` }))
    }
  }
  return Either.right(messages)
}
