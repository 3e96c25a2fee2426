import { Cause, Effect, Either, Exit, Fiber, Option, ParseResult, Predicate, Redacted, Runtime, Schema, Stream } from "effect"
import {
  ActionNotFound,
  declarationOf,
  definitionProblems,
  DefinitionInvalid,
  describeValue,
  handlerResultProblem,
  PluginDefinitionTypeId,
  streamResultProblem,
  type DefinitionProblem,
  describeJsonValueProblem,
  formatSchemaProblems,
  jsonValueProblem,
  isPluginDefinition,
  isPluginFailure,
  PluginFatalError,
  PluginInputError,
  ProtocolError,
  SandboxDenied,
  secretsOf,
  type ActionContext,
  type AnyAction,
  type AnyPluginDefinition,
  type PluginAssets,
  type PluginFailure,
  type PluginSecrets,
} from "@plinth/domain"
import { isBuiltin } from "node:module"
import { encodeFrame, type EncodedFrame, type FrameCaps } from "../wire/Framing.js"
import { ImportRefused, makeModuleGraph } from "./ModuleGraph.js"
import { sharedLibrary } from "./SharedLibraries.js"
import { makePluginAssets } from "./PluginAssets.js"
import { decodeHostMessage, Failure, LoadFailed, parseFrame, WorkerMessage, type CallUsage, type Invoke, type Load } from "../wire/Protocol.js"

/*
 * The worker side, loaded by the bootstrap right after it reported ready.
 * Runs one plugin: links its verified bytes, answers calls, reports progress,
 * and turns every failure into a taxonomy error before it crosses the wire.
 */

/**
 * The worker's end of the channel, opened by the bootstrap before any plugin
 * code exists and handed over here: it is held in closures only, never on
 * `process` or a global.
 */
export interface WorkerChannel {
  readonly caps: FrameCaps
  /** Queues one frame; the frames of one tick go out in one write, batched unless `solo` (Framing.ts). */
  readonly write: (frame: EncodedFrame, solo?: boolean) => void
  /** Starts delivering the host's frames, those that arrived before first, in order. */
  readonly listen: (onFrame: (text: string, bytes: number) => void, onError: (detail: string) => void) => void
}

let channel: WorkerChannel | undefined

/**
 * Sends a message the runtime built from values it checked (or that carry no
 * plugin values): every message but Failure and LoadFailed encodes to
 * itself, and those two are encoded where they are built.
 */
const send = (message: typeof WorkerMessage.Encoded): void => channel!.write(encodeFrame(message))

const encodeLoadFailed = Schema.encodeSync(LoadFailed)
const encodeFailure = Schema.encodeSync(Failure)

const permissionNames: Record<string, SandboxDenied["permission"]> = {
  FileSystemRead: "fs-read",
  FileSystemWrite: "fs-write",
  ChildProcess: "child-process",
  WorkerThreads: "worker-threads",
  Signal: "signal",
}

/*
 * A call's usage, reported in its final frame: the process's CPU time while
 * it ran (calls running at once share the process, so each is charged all of
 * it) and the process's peak RSS so far (getrusage's maxRSS, in KiB). Bound
 * now, before any plugin code exists, so a plugin replacing them on `process`
 * changes nothing here (it could still lie by other means: only about itself).
 */
const cpuUsage = process.cpuUsage.bind(process)
const resourceUsage = process.resourceUsage.bind(process)
// One getrusage at a call's end, not two: resourceUsage carries the CPU times cpuUsage reads (the same microseconds).
const usageSince = (start: NodeJS.CpuUsage): CallUsage => {
  const now = resourceUsage()
  return { cpuMs: (now.userCPUTime - start.user + (now.systemCPUTime - start.system)) / 1000, peakRssBytes: now.maxRSS * 1024 }
}

const describe = (u: unknown) => (u instanceof Error ? `${u.name}: ${u.message}` : String(u))

/** Any thrown value or failure to a taxonomy error: sandbox refusals are recognised, the unknown is fatal. */
export const failureFromUnknown = (u: unknown): PluginFailure => {
  if (isPluginFailure(u)) return u
  if (Predicate.hasProperty(u, "_tag") && u._tag === "UnknownException" && Predicate.hasProperty(u, "error")) {
    return failureFromUnknown(u.error)
  }
  if (Predicate.hasProperty(u, "code")) {
    if (u.code === "ERR_ACCESS_DENIED") {
      const permission = Predicate.hasProperty(u, "permission") ? permissionNames[String(u.permission)] : undefined
      const resource = Predicate.hasProperty(u, "resource") ? String(u.resource) : ""
      return new SandboxDenied({ permission: permission ?? "other", resource })
    }
    if (u.code === "PLINTH_ENV_DENIED" && Predicate.hasProperty(u, "variable")) {
      return new SandboxDenied({ permission: "env", resource: String(u.variable) })
    }
    if (u.code === "PLINTH_IMPORT_REFUSED" && Predicate.hasProperty(u, "specifier")) {
      const detail = Predicate.hasProperty(u, "message") ? String(u.message) : undefined
      return new SandboxDenied({ permission: "import", resource: String(u.specifier), ...(detail !== undefined ? { detail } : {}) })
    }
  }
  return new PluginFatalError({ message: describe(u) })
}

const failureFromCause = (cause: Cause.Cause<unknown>): PluginFailure =>
  Option.match(Cause.failureOption(cause), {
    onSome: failureFromUnknown,
    onNone: () =>
      Option.match(Cause.dieOption(cause), {
        onSome: failureFromUnknown,
        onNone: () => new PluginFatalError({ message: Cause.pretty(cause) }),
      }),
  })

/**
 * Variables Node itself reads on a plugin's behalf: its own settings, and the colour
 * detection behind every `console.log` (util's shouldColorize / getColorDepth). They are
 * never handed to plugins (the host starts the worker without them) and stay readable
 * as undefined, so logging works without declaring them.
 */
const nodeReadsItself = new Set([
  "WATCH_REPORT_DEPENDENCIES",
  "FORCE_COLOR",
  "NO_COLOR",
  "TERM",
  "TMUX",
  "COLORTERM",
  "TERM_PROGRAM",
  "TERM_PROGRAM_VERSION",
  "TEAMCITY_VERSION",
  "CI",
  "ConEmuANSI",
])
const nodeOwnVariable = (name: string) => name.startsWith("NODE_") || nodeReadsItself.has(name)

class EnvAccessDenied extends Error {
  readonly code = "PLINTH_ENV_DENIED"
  constructor(readonly variable: string) {
    super(`the environment variable '${variable}' is not declared in the manifest`)
    this.name = "EnvAccessDenied"
  }
}

/**
 * The host already starts the worker with only the declared variables; this
 * makes reading any other one a typed denial instead of a silent undefined.
 */
const guardEnvironment = (declared: ReadonlyArray<string>) => {
  const allowed = new Set(declared)
  const real = process.env
  process.env = new Proxy(real, {
    get: (target, key) => {
      if (typeof key !== "string" || allowed.has(key)) return Reflect.get(target, key)
      if (nodeOwnVariable(key)) return undefined
      throw new EnvAccessDenied(key)
    },
    has: (target, key) => typeof key === "string" && allowed.has(key) && Reflect.has(target, key),
    ownKeys: (target) => Reflect.ownKeys(target).filter((key) => typeof key === "string" && allowed.has(key)),
  })
}

interface LoadedPlugin {
  readonly id: string
  readonly definition: AnyPluginDefinition
  readonly config: unknown
  readonly dataDir: string | undefined
  readonly files: PluginAssets
  readonly secrets: PluginSecrets
}

const definitionInvalid = (plugin: string, problem: DefinitionProblem) =>
  new DefinitionInvalid({ plugin, rule: problem.rule, detail: problem.detail, ...(problem.action !== undefined ? { action: problem.action } : {}) })

/** A decoding failure on one line, each problem with its path (`name: expected a string, got 3; …`), not Effect's schema tree. */
const inWords = (error: ParseResult.ParseError): string => formatSchemaProblems(error).join("; ")

/** The fields a decoding failure names, for `fieldsInvalid`. */
const invalidFields = (error: ParseResult.ParseError): ReadonlyArray<string> => [
  ...new Set(ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => issue.path.join(".") || "(root)")),
]

/**
 * Imports a Node builtin for a plugin. It comes from the bootstrap: the
 * bundled runtime runs as a classic script from a V8 code cache, and a
 * dynamic import() compiled into such a cache has no import callback in
 * another process (RuntimeScript.ts), so the runtime holds no import() itself.
 */
export type ImportBuiltin = (specifier: string) => Promise<Record<string, unknown>>

const loadPlugin = (message: Load, importBuiltin: ImportBuiltin): Effect.Effect<LoadedPlugin, PluginFailure> =>
  Effect.gen(function* () {
    const files = new Map(message.files.map((f) => [f.path, f.bytes]))
    const graph = makeModuleGraph({
      plugin: message.plugin,
      entry: message.entry,
      files,
      importShared: (specifier) => {
        if (isBuiltin(specifier)) return importBuiltin(specifier)
        const namespace = sharedLibrary(specifier)
        return namespace !== undefined
          ? Promise.resolve(namespace)
          : Promise.reject(new ImportRefused(specifier, message.entry, "it is not a module of the shared libraries"))
      },
    })
    guardEnvironment(message.env)
    const namespace = yield* Effect.tryPromise({ try: () => graph.evaluateEntry(), catch: failureFromUnknown })
    const definition = namespace["default"]
    if (!Predicate.hasProperty(definition, PluginDefinitionTypeId)) {
      return yield* new PluginFatalError({
        message: `the entry of '${message.plugin}' does not default-export a definition made with definePlugin`,
      })
    }
    // The first broken rule, named with its action: what to fix before the declaration can even be read.
    const problem = definitionProblems(definition)[0]
    if (problem !== undefined || !isPluginDefinition(definition)) {
      return yield* definitionInvalid(message.plugin, problem ?? { rule: "definition-shape", detail: "it is not a definition made with definePlugin" })
    }
    const config = yield* Schema.decodeUnknown(definition.config)(message.config ?? {}).pipe(
      Effect.mapError((error) => new PluginInputError({ message: `invalid config: ${inWords(error)}`, fieldsInvalid: invalidFields(error) })),
    )
    if (definition.setup !== undefined) {
      const setup: unknown = definition.setup(config)
      if (!Effect.isEffect(setup)) {
        return yield* definitionInvalid(message.plugin, {
          rule: "lifecycle-function",
          detail: `'setup' must return an Effect (Effect.promise(() => …) wraps a Promise); it returned ${describeValue(setup)}`,
        })
      }
      yield* Effect.mapError(setup as Effect.Effect<void, unknown>, failureFromUnknown)
    }
    return {
      id: message.plugin,
      definition,
      config,
      dataDir: message.dataDir ?? undefined,
      files: makePluginAssets(files),
      // Redacted from here on: a handler that prints or serializes one shows `<redacted>`.
      secrets: secretsOf(new Map(message.secrets.map(({ name, value }) => [name, Redacted.make(value)]))),
    }
  }).pipe(Effect.catchAllDefect((defect) => Effect.fail(failureFromUnknown(defect))))

interface CompiledAction {
  readonly action: AnyAction
  readonly decodeInput: (u: unknown) => Either.Either<unknown, ParseResult.ParseError>
  readonly encodeOutput: (u: unknown) => Either.Either<unknown, ParseResult.ParseError>
}

/** Each action's input decoder and output encoder, compiled once per worker. */
const compileActions = (definition: AnyPluginDefinition): ReadonlyMap<string, CompiledAction> =>
  new Map(
    Object.entries(definition.actions).map(([name, action]) => [
      name,
      {
        action,
        decodeInput: Schema.decodeUnknownEither(action.input, { errors: "all" }),
        encodeOutput: Schema.encodeUnknownEither(action.output),
      },
    ]),
  )

const fromWorkerCap = () => channel!.caps.fromWorker

/**
 * A result or chunk as a frame, or why it cannot be sent: it must be a JSON
 * value (one value domain, both ways) and fit in a frame the host accepts.
 * Either failure fails the call, typed, and the worker keeps serving.
 */
const outputFrame = (tag: "Success" | "Chunk", id: number, action: string, value: unknown, usage?: CallUsage): EncodedFrame | PluginFatalError => {
  const problem = jsonValueProblem(value)
  if (problem !== undefined) {
    return new PluginFatalError({ message: `'${action}' returned a value JSON cannot carry: ${describeJsonValueProblem(problem)}` })
  }
  let frame: EncodedFrame
  try {
    frame = encodeFrame(usage === undefined ? { _tag: tag, id, value } : { _tag: tag, id, value, usage })
  } catch (error) {
    return new PluginFatalError({ message: `'${action}' returned a value that cannot be serialized: ${describe(error)}` })
  }
  const cap = fromWorkerCap()
  if (frame.bytes > cap) {
    return new PluginFatalError({
      message: `'${action}' returned ${frame.bytes} bytes of JSON, over the cap of ${cap} a worker may send in one frame (maxFrameBytes.fromWorker)`,
    })
  }
  return frame
}

/** An encoded Failure frame, if it is a JSON value that fits in a frame. */
const tryFailureFrame = (id: number, error: PluginFailure, usage: CallUsage | undefined): EncodedFrame | undefined => {
  const frame = Either.try(() => {
    const encoded = encodeFailure(usage === undefined ? { _tag: "Failure", id, error } : { _tag: "Failure", id, error, usage })
    return jsonValueProblem(encoded) === undefined ? encodeFrame(encoded) : undefined
  })
  return Either.isRight(frame) && frame.right !== undefined && frame.right.bytes <= fromWorkerCap() ? frame.right : undefined
}

/**
 * Failures cross as JSON: one whose fields do not survive that (a non-finite
 * number, say) or that is too large would be a protocol break on the host, so
 * it goes as a fatal error with (the start of) its message instead.
 */
const sendFailure = (id: number, error: PluginFailure, usage?: CallUsage) => {
  const frame =
    tryFailureFrame(id, error, usage) ??
    tryFailureFrame(id, new PluginFatalError({ message: `${error._tag}: ${String(Either.getOrElse(Either.try(() => error.message), () => ""))}`.slice(0, 4096) }), usage) ??
    tryFailureFrame(id, new PluginFatalError({ message: "the call failed with an error that cannot be sent" }), usage)!
  channel!.write(frame)
}

const badOutput = (action: string, error: ParseResult.ParseError) =>
  new PluginFatalError({ message: `'${action}' returned output that does not match its schema: ${inWords(error)}` })

/**
 * A streaming call's credit, granted by the host (Protocol.ts, Credit): a
 * chunk goes out while there is at least one chunk and a positive number of
 * bytes of it; otherwise the plugin's stream is not pulled until more arrives.
 */
interface StreamCredit {
  chunks: number
  bytes: number
  wake: (() => void) | undefined
}

const hasCredit = (credit: StreamCredit) => credit.chunks >= 1 && credit.bytes > 0

/**
 * Checks a call before any plugin code runs: the action exists, its kind
 * matches, and the input decodes (once, with the action's own Schema).
 */
const prepareCall = (
  plugin: string,
  actions: ReadonlyMap<string, CompiledAction>,
  call: Invoke,
): Either.Either<{ readonly compiled: CompiledAction; readonly input: unknown }, PluginFailure> => {
  const compiled = actions.get(call.action)
  if (compiled === undefined) return Either.left(new ActionNotFound({ plugin, action: call.action }))
  const { action } = compiled
  if ((action._kind === "streaming") !== call.streaming) {
    return Either.left(
      new PluginInputError({
        message: `'${call.action}' is ${action._kind === "streaming" ? "a streaming" : "not a streaming"} action`,
      }),
    )
  }
  const input = compiled.decodeInput(call.input)
  if (Either.isLeft(input)) {
    return Either.left(
      new PluginInputError({
        message: `invalid input for '${call.action}': ${inWords(input.left)}`,
        fieldsInvalid: invalidFields(input.left),
      }),
    )
  }
  return Either.right({ compiled, input: input.right })
}

/** The plugin's own Effect for a call: the handler, or the stream drained chunk by chunk onto the wire. */
const callEffect = (
  plugin: LoadedPlugin,
  call: Invoke,
  compiled: CompiledAction,
  input: unknown,
  credit: StreamCredit,
): Effect.Effect<unknown, PluginFailure> => {
  const context: ActionContext<unknown> = {
    config: plugin.config,
    dataDir: plugin.dataDir,
    files: plugin.files,
    secrets: plugin.secrets,
    // A non-finite fraction cannot cross as JSON (it would arrive as null); such a report is dropped.
    progress: (fraction, message) =>
      Effect.sync(() => {
        if (typeof fraction === "number" && Number.isFinite(fraction)) {
          send({ _tag: "Progress", id: call.id, fraction, ...(typeof message === "string" ? { message } : {}) })
        }
      }),
  }
  const { action } = compiled
  // Plugin code may be plain JavaScript: what a handler returns, or throws, is checked here, so a
  // mistake fails this call, typed, instead of escaping the fiber and ending the worker.
  // Plain try/catch, not more combinators: this is on every call's path.
  let returned: unknown
  try {
    returned = action._kind === "unary" ? action.handler(input, context) : action.stream(input, context)
  } catch (error) {
    return Effect.fail(failureFromUnknown(error))
  }
  const problem = action._kind === "unary" ? handlerResultProblem(call.action, returned) : streamResultProblem(call.action, returned)
  if (problem !== undefined) return Effect.fail(definitionInvalid(plugin.id, problem))
  if (action._kind === "unary") return Effect.mapError(returned as Effect.Effect<unknown, unknown>, failureFromUnknown)
  return (returned as Stream.Stream<unknown, unknown>).pipe(
    Stream.mapError(failureFromUnknown),
    Stream.runForEach((chunk) => {
      const value = compiled.encodeOutput(chunk)
      if (Either.isLeft(value)) return Effect.fail(badOutput(call.action, value.left))
      const frame = outputFrame("Chunk", call.id, call.action, value.right)
      if (frame instanceof PluginFatalError) return Effect.fail(frame)
      const sendChunk = () => {
        credit.chunks--
        credit.bytes -= frame.bytes
        channel!.write(frame, true)
      }
      if (hasCredit(credit)) return Effect.sync(sendChunk)
      // Out of credit: the next chunk is not pulled from the plugin until the host grants more.
      return Effect.async<void>((resume) => {
        credit.wake = () => {
          if (!hasCredit(credit)) return
          credit.wake = undefined
          sendChunk()
          resume(Effect.void)
        }
        return Effect.sync(() => void (credit.wake = undefined))
      })
    }),
  )
}

/**
 * The Loaded frame: the declaration must be a JSON value that fits in a
 * frame; it carries the secret the host sent in Load, which this closure
 * captured before any plugin code was linked (ADR 17).
 */
const loadedFrame = (secret: string, definition: AnyPluginDefinition): EncodedFrame | PluginFatalError => {
  const declaration = Either.try(() => declarationOf(definition))
  if (Either.isLeft(declaration)) return new PluginFatalError({ message: `the plugin's declaration cannot be read: ${describe(declaration.left)}` })
  const problem = jsonValueProblem(declaration.right)
  if (problem !== undefined) {
    return new PluginFatalError({ message: `the plugin's declaration is not a JSON value: ${describeJsonValueProblem(problem)}` })
  }
  const frame = Either.try(() => encodeFrame({ _tag: "Loaded", secret, declaration: declaration.right }))
  if (Either.isLeft(frame)) return new PluginFatalError({ message: `the plugin's declaration cannot be serialized: ${describe(frame.left)}` })
  if (frame.right.bytes > fromWorkerCap()) {
    return new PluginFatalError({ message: `the plugin's declaration takes ${frame.right.bytes} bytes, over the frame cap of ${fromWorkerCap()}` })
  }
  return frame.right
}

export const start = (workerChannel: WorkerChannel, importBuiltin: ImportBuiltin) => {
  channel = workerChannel
  const runtime = Runtime.defaultRuntime
  const runFork = Runtime.runFork(runtime)
  const running = new Map<number, Fiber.RuntimeFiber<unknown, PluginFailure>>()
  const credits = new Map<number, StreamCredit>()
  let loaded: LoadedPlugin | undefined
  let actions: ReadonlyMap<string, CompiledAction> = new Map()
  let loading = false

  /*
   * The call path forks the plugin's Effect on a pre-built runtime and
   * reports back from a fiber observer: no per-call Layer, Scope or extra
   * combinators (measured as most of the per-call cost before).
   */
  const invoke = (plugin: LoadedPlugin, call: Invoke) => {
    const prepared = prepareCall(plugin.id, actions, call)
    if (Either.isLeft(prepared)) return sendFailure(call.id, prepared.left)
    const { compiled, input } = prepared.right
    const credit: StreamCredit = { chunks: 0, bytes: 0, wake: undefined }
    if (call.streaming) credits.set(call.id, credit)
    const cpuStart = cpuUsage()
    const fiber = runFork(callEffect(plugin, call, compiled, input, credit))
    running.set(call.id, fiber)
    fiber.addObserver((exit) => {
      running.delete(call.id)
      credits.delete(call.id)
      if (Exit.isSuccess(exit)) {
        if (compiled.action._kind === "streaming") return send({ _tag: "End", id: call.id, usage: usageSince(cpuStart) })
        const value = compiled.encodeOutput(exit.value)
        const usage = usageSince(cpuStart)
        if (Either.isLeft(value)) return sendFailure(call.id, badOutput(call.action, value.left), usage)
        const frame = outputFrame("Success", call.id, call.action, value.right, usage)
        return frame instanceof PluginFatalError ? sendFailure(call.id, frame, usage) : channel!.write(frame)
      }
      if (Cause.isInterruptedOnly(exit.cause)) return send({ _tag: "Interrupted", id: call.id })
      sendFailure(call.id, failureFromCause(exit.cause), usageSince(cpuStart))
    })
  }

  /** A hook the plugin does not define succeeds at once; one that is not an Effect fails typed, like a handler. */
  const runLifecycle = (plugin: LoadedPlugin, id: number, hook: "enable" | "disable") => {
    const name = hook === "enable" ? "onEnable" : "onDisable"
    const fn = plugin.definition[name]
    let effect: Effect.Effect<unknown, PluginFailure> = Effect.void
    if (fn !== undefined) {
      try {
        const returned: unknown = fn(plugin.config)
        effect = Effect.isEffect(returned)
          ? Effect.mapError(returned as Effect.Effect<unknown, unknown>, failureFromUnknown)
          : Effect.fail(
              definitionInvalid(plugin.id, {
                rule: "lifecycle-function",
                detail: `'${name}' must return an Effect (Effect.promise(() => …) wraps a Promise); it returned ${describeValue(returned)}`,
              }),
            )
      } catch (error) {
        effect = Effect.fail(failureFromUnknown(error))
      }
    }
    runFork(effect).addObserver((exit) => {
      if (Exit.isSuccess(exit)) return send({ _tag: "Success", id, value: null })
      sendFailure(id, failureFromCause(exit.cause))
    })
  }

  const handle = (text: string) => {
    const parsed = parseFrame(text)
    if (Either.isLeft(parsed)) return send({ _tag: "Rejected", detail: parsed.left.detail })
    for (const raw of parsed.right) handleMessage(raw)
  }

  const handleMessage = (raw: unknown) => {
    const decoded = decodeHostMessage(raw)
    if (Either.isLeft(decoded)) return send({ _tag: "Rejected", detail: decoded.left.detail })
    const message = decoded.right
    switch (message._tag) {
      case "Invoke": {
        if (loaded === undefined) return sendFailure(message.id, new ProtocolError({ detail: "no plugin is loaded" }))
        if (running.has(message.id)) return send({ _tag: "Rejected", detail: `call ${message.id} is already running` })
        return invoke(loaded, message)
      }
      case "Credit": {
        // Credit for a stream that has already ended is simply unused.
        const credit = credits.get(message.id)
        if (credit === undefined) return
        credit.chunks += message.chunks
        credit.bytes += message.bytes
        return credit.wake?.()
      }
      case "Load": {
        if (loading || loaded !== undefined) return send({ _tag: "Rejected", detail: "the plugin is already loaded" })
        loading = true
        // Captured here, before the plugin's code is linked; only this closure ever holds it.
        const secret = message.secret
        const loadFailed = (error: PluginFailure) => send(encodeLoadFailed({ _tag: "LoadFailed", secret, error }))
        Runtime.runCallback(runtime)(loadPlugin(message, importBuiltin), {
          onExit: (exit) => {
            if (Exit.isFailure(exit)) return loadFailed(failureFromCause(exit.cause))
            const frame = loadedFrame(secret, exit.value.definition)
            if (frame instanceof PluginFatalError) return loadFailed(frame)
            loaded = exit.value
            actions = compileActions(exit.value.definition)
            channel!.write(frame)
          },
        })
        return
      }
      case "Lifecycle": {
        if (loaded === undefined) return sendFailure(message.id, new ProtocolError({ detail: "no plugin is loaded" }))
        return runLifecycle(loaded, message.id, message.hook)
      }
      case "Interrupt": {
        const fiber = running.get(message.id)
        if (fiber !== undefined) runFork(Fiber.interrupt(fiber))
        return
      }
      case "Shutdown": {
        const plugin = loaded
        const teardown = plugin?.definition.teardown?.(plugin.config) ?? Effect.void
        Runtime.runCallback(runtime)(
          Effect.zipRight(
            Effect.forEach([...running.values()], Fiber.interrupt, { discard: true }),
            teardown,
          ).pipe(Effect.timeout("2 seconds"), Effect.ignore),
          { onExit: () => process.exit(0) },
        )
        return
      }
    }
  }

  // A host frame over the cap cannot be read past: say so (the host kills this worker for it).
  workerChannel.listen(handle, (detail) => send({ _tag: "Rejected", detail }))
}
