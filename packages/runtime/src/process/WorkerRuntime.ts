import { Cause, Effect, Either, Exit, Fiber, Option, ParseResult, Predicate, Runtime, Schema, Stream } from "effect"
import {
  ActionNotFound,
  declarationOf,
  isPluginDefinition,
  isPluginFailure,
  PluginFatalError,
  PluginInputError,
  ProtocolError,
  SandboxDenied,
  type ActionContext,
  type AnyAction,
  type AnyPluginDefinition,
  type PluginAssets,
  type PluginFailure,
} from "@plinth/domain"
import { isBuiltin } from "node:module"
import { Socket } from "node:net"
import { BULK_ARG, BULK_FD, makeReceiver, makeSender } from "../wire/Channel.js"
import { ImportRefused, makeModuleGraph } from "./ModuleGraph.js"
import { sharedLibrary } from "./SharedLibraries.js"
import { makePluginAssets } from "./PluginAssets.js"
import { decodeHostMessage, Failure, framedMessages, makeOutbox, LoadFailed, WorkerMessage, type Invoke, type Load } from "../wire/Protocol.js"

/*
 * The worker side, loaded by the bootstrap right after it reported ready.
 * Runs one plugin: links its verified bytes, answers calls, reports progress,
 * and turns every failure into a taxonomy error before it crosses the wire.
 */

/** The bulk pipe to the host, when it gave us one (Channel.ts). */
const bulk = process.argv.includes(BULK_ARG) ? new Socket({ fd: BULK_FD, readable: true, writable: true }) : undefined
// The IPC channel, not this pipe, decides how long the worker lives.
bulk?.unref()

const sendFrame = makeSender((frame) => {
  if (process.connected) process.send!(frame)
}, bulk === undefined ? undefined : { write: (bytes) => void bulk.write(bytes) })

/**
 * A frame that cannot be sent as JSON (a cycle, a BigInt in a plugin's value)
 * must fail its call, not the worker: each message is retried on its own and
 * one that still cannot be sent is replaced by a failure of its call.
 */
const writeFrame = (frame: unknown) => {
  try {
    return sendFrame(frame)
  } catch {
    for (const message of framedMessages(frame)) {
      try {
        sendFrame(message)
      } catch (error) {
        if (Predicate.hasProperty(message, "id") && typeof message.id === "number") {
          sendFrame(encodeFailure({ _tag: "Failure", id: message.id, error: new PluginFatalError({ message: `the result could not be sent: ${describe(error)}` }) }))
        }
      }
    }
  }
}

/**
 * Sends a message as it is: every message but Failure and LoadFailed encodes
 * to itself, and those two are encoded where they are built.
 */
const send: (message: typeof WorkerMessage.Encoded) => void = makeOutbox(writeFrame)

const encodeLoadFailed = Schema.encodeSync(LoadFailed)
const encodeFailure = Schema.encodeSync(Failure)

const permissionNames: Record<string, SandboxDenied["permission"]> = {
  FileSystemRead: "fs-read",
  FileSystemWrite: "fs-write",
  ChildProcess: "child-process",
  WorkerThreads: "worker-threads",
  Signal: "signal",
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
      return new SandboxDenied({ permission: "import", resource: String(u.specifier) })
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

/** Node reads a few variables of its own; they are never handed to plugins and stay readable as undefined. */
const nodeOwnVariable = (name: string) => name.startsWith("NODE_") || name === "WATCH_REPORT_DEPENDENCIES"

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
}

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
    if (!isPluginDefinition(definition)) {
      return yield* new PluginFatalError({
        message: `the entry of '${message.plugin}' does not default-export a definition made with definePlugin`,
      })
    }
    const config = yield* Schema.decodeUnknown(definition.config)(message.config ?? {}).pipe(
      Effect.mapError((error) => new PluginInputError({ message: `invalid config: ${error.message}`, fieldsInvalid: invalidFields(error) })),
    )
    if (definition.setup !== undefined) yield* definition.setup(config).pipe(Effect.mapError(failureFromUnknown))
    return { id: message.plugin, definition, config, dataDir: message.dataDir ?? undefined, files: makePluginAssets(files) }
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

const decodeFailure = Schema.decodeUnknownEither(Failure)

/**
 * Failures cross as JSON: one whose fields do not survive that (a non-finite
 * number, say) would be a protocol break on the host, so it goes as a fatal
 * error with its message instead. Failures are rare; the check is cheap.
 */
const sendFailure = (id: number, error: PluginFailure) => {
  const encoded = encodeFailure({ _tag: "Failure", id, error })
  const crossed = Either.isRight(Either.try(() => decodeFailure(JSON.parse(JSON.stringify(encoded)))).pipe(Either.flatMap((d) => d)))
  send(crossed ? encoded : encodeFailure({ _tag: "Failure", id, error: new PluginFatalError({ message: `${error._tag}: ${error.message}` }) }))
}

const badOutput = (action: string, error: ParseResult.ParseError) =>
  new PluginFatalError({ message: `'${action}' returned output that does not match its schema: ${error.message}` })

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
        message: `invalid input for '${call.action}': ${input.left.message}`,
        fieldsInvalid: invalidFields(input.left),
      }),
    )
  }
  return Either.right({ compiled, input: input.right })
}

/** The plugin's own Effect for a call: the handler, or the stream drained chunk by chunk onto the wire. */
const callEffect = (plugin: LoadedPlugin, call: Invoke, compiled: CompiledAction, input: unknown): Effect.Effect<unknown, PluginFailure> => {
  const context: ActionContext<unknown> = {
    config: plugin.config,
    dataDir: plugin.dataDir,
    files: plugin.files,
    // A non-finite fraction cannot cross as JSON (it would arrive as null); such a report is dropped.
    progress: (fraction, message) =>
      Effect.sync(() => {
        if (Number.isFinite(fraction)) send({ _tag: "Progress", id: call.id, fraction, ...(message !== undefined ? { message } : {}) })
      }),
  }
  const { action } = compiled
  if (action._kind === "unary") return Effect.mapError(action.handler(input, context), failureFromUnknown)
  return action.stream(input, context).pipe(
    Stream.mapError(failureFromUnknown),
    Stream.runForEach((chunk) => {
      const value = compiled.encodeOutput(chunk)
      if (Either.isLeft(value)) return Effect.fail(badOutput(call.action, value.left))
      send({ _tag: "Chunk", id: call.id, value: value.right })
      return Effect.void
    }),
  )
}

export const start = (backlog: ReadonlyArray<unknown>, importBuiltin: ImportBuiltin) => {
  const runtime = Runtime.defaultRuntime
  const runFork = Runtime.runFork(runtime)
  const running = new Map<number, Fiber.RuntimeFiber<unknown, PluginFailure>>()
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
    const fiber = runFork(callEffect(plugin, call, compiled, input))
    running.set(call.id, fiber)
    fiber.addObserver((exit) => {
      running.delete(call.id)
      if (Exit.isSuccess(exit)) {
        if (compiled.action._kind === "streaming") return send({ _tag: "End", id: call.id })
        const value = compiled.encodeOutput(exit.value)
        if (Either.isLeft(value)) return sendFailure(call.id, badOutput(call.action, value.left))
        return send({ _tag: "Success", id: call.id, value: value.right })
      }
      if (Cause.isInterruptedOnly(exit.cause)) return send({ _tag: "Interrupted", id: call.id })
      sendFailure(call.id, failureFromCause(exit.cause))
    })
  }

  const handle = (raw: unknown) => {
    const decoded = decodeHostMessage(raw)
    if (Either.isLeft(decoded)) return send({ _tag: "Rejected", detail: decoded.left.detail })
    const message = decoded.right
    switch (message._tag) {
      case "Invoke": {
        if (loaded === undefined) return sendFailure(message.id, new ProtocolError({ detail: "no plugin is loaded" }))
        if (running.has(message.id)) return send({ _tag: "Rejected", detail: `call ${message.id} is already running` })
        return invoke(loaded, message)
      }
      case "Load": {
        if (loading || loaded !== undefined) return send({ _tag: "Rejected", detail: "the plugin is already loaded" })
        loading = true
        Runtime.runCallback(runtime)(loadPlugin(message, importBuiltin), {
          onExit: (exit) => {
            if (Exit.isSuccess(exit)) {
              loaded = exit.value
              actions = compileActions(exit.value.definition)
              send({ _tag: "Loaded", declaration: declarationOf(exit.value.definition) })
            } else {
              send(encodeLoadFailed({ _tag: "LoadFailed", error: failureFromCause(exit.cause) }))
            }
          },
        })
        return
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

  const receiver = makeReceiver((frame) => {
    for (const raw of framedMessages(frame)) handle(raw)
  })
  for (const frame of backlog) receiver.ipc(frame)
  process.on("message", receiver.ipc)
  bulk?.on("data", receiver.bulk)
}
