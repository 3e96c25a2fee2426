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
  type AnyPluginDefinition,
  type PluginFailure,
} from "@plinth/domain"
import { makeModuleGraph } from "./ModuleGraph.js"
import {
  Chunk,
  decodeHostMessage,
  encodeWorkerMessage,
  End,
  Failure,
  Interrupted,
  Loaded,
  LoadFailed,
  Progress,
  Rejected,
  Success,
  type Invoke,
  type Load,
  type WorkerMessage,
} from "./Protocol.js"

/*
 * The worker side, loaded by the bootstrap right after it reported ready.
 * Runs one plugin: links its verified bytes, answers calls, reports progress,
 * and turns every failure into a taxonomy error before it crosses the wire.
 */

const send = (message: WorkerMessage) => {
  if (process.connected) process.send!(encodeWorkerMessage(message))
}

const permissionNames: Record<string, SandboxDenied["permission"]> = {
  FileSystemRead: "fs-read",
  FileSystemWrite: "fs-write",
  ChildProcess: "child-process",
  WorkerThreads: "worker-threads",
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
  readonly definition: AnyPluginDefinition
  readonly config: unknown
  readonly dataDir: string | undefined
}

/** The fields a decoding failure names, for `fieldsInvalid`. */
const invalidFields = (error: ParseResult.ParseError): ReadonlyArray<string> => [
  ...new Set(ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => issue.path.join(".") || "(root)")),
]

const loadPlugin = (message: Load): Effect.Effect<LoadedPlugin, PluginFailure> =>
  Effect.gen(function* () {
    const graph = makeModuleGraph({
      plugin: message.plugin,
      entry: message.entry,
      files: new Map(message.files.map((f) => [f.path, f.bytes])),
      importShared: (specifier) => import(specifier) as Promise<Record<string, unknown>>,
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
    return { definition, config, dataDir: message.dataDir ?? undefined }
  }).pipe(Effect.catchAllDefect((defect) => Effect.fail(failureFromUnknown(defect))))

const runCall = (plugin: LoadedPlugin, call: Invoke): Effect.Effect<void, PluginFailure> =>
  Effect.gen(function* () {
    const action = plugin.definition.actions[call.action]
    if (action === undefined || !Object.hasOwn(plugin.definition.actions, call.action)) {
      return yield* new ActionNotFound({ plugin: "", action: call.action })
    }
    if ((action._kind === "streaming") !== call.streaming) {
      return yield* new PluginInputError({
        message: `'${call.action}' is ${action._kind === "streaming" ? "a streaming" : "not a streaming"} action`,
      })
    }
    const input = yield* Schema.decodeUnknown(action.input)(call.input, { errors: "all" }).pipe(
      Effect.mapError((error) => new PluginInputError({ message: `invalid input for '${call.action}': ${error.message}`, fieldsInvalid: invalidFields(error) })),
    )
    const context: ActionContext<unknown> = {
      config: plugin.config,
      dataDir: plugin.dataDir,
      progress: (fraction, message) =>
        Effect.sync(() => send(new Progress({ id: call.id, fraction, ...(message !== undefined ? { message } : {}) }))),
    }
    const encodeOutput = (value: unknown) =>
      Schema.encodeUnknown(action.output)(value).pipe(
        Effect.mapError(
          (error) => new PluginFatalError({ message: `'${call.action}' returned output that does not match its schema: ${error.message}` }),
        ),
      )
    if (action._kind === "unary") {
      const output = yield* action.handler(input, context).pipe(Effect.mapError(failureFromUnknown))
      const encoded = yield* encodeOutput(output)
      send(new Success({ id: call.id, value: encoded }))
    } else {
      yield* action.stream(input, context).pipe(
        Stream.mapError(failureFromUnknown),
        Stream.runForEach((chunk) => Effect.map(encodeOutput(chunk), (value) => send(new Chunk({ id: call.id, value })))),
      )
      send(new End({ id: call.id }))
    }
  })

export const start = (backlog: ReadonlyArray<unknown>) => {
  const runtime = Runtime.defaultRuntime
  const running = new Map<number, Fiber.RuntimeFiber<void, never>>()
  let loaded: LoadedPlugin | undefined
  let loading = false

  const handle = (raw: unknown) => {
    const decoded = decodeHostMessage(raw)
    if (Either.isLeft(decoded)) return send(new Rejected({ detail: decoded.left.detail }))
    const message = decoded.right
    switch (message._tag) {
      case "Load": {
        if (loading || loaded !== undefined) return send(new Rejected({ detail: "the plugin is already loaded" }))
        loading = true
        Runtime.runCallback(runtime)(loadPlugin(message), {
          onExit: (exit) => {
            if (Exit.isSuccess(exit)) {
              loaded = exit.value
              send(new Loaded({ declaration: declarationOf(exit.value.definition) }))
            } else {
              send(new LoadFailed({ error: failureFromCause(exit.cause) }))
            }
          },
        })
        return
      }
      case "Invoke": {
        if (loaded === undefined) {
          return send(new Failure({ id: message.id, error: new ProtocolError({ detail: "no plugin is loaded" }) }))
        }
        if (running.has(message.id)) return send(new Rejected({ detail: `call ${message.id} is already running` }))
        const fiber = Runtime.runFork(runtime)(
          runCall(loaded, message).pipe(
            // onExit, not catchAllCause: an interrupted fiber cannot recover, but it still reports back.
            Effect.onExit((exit) =>
              Effect.sync(() => {
                if (Exit.isSuccess(exit)) return
                if (Cause.isInterruptedOnly(exit.cause)) send(new Interrupted({ id: message.id }))
                else send(new Failure({ id: message.id, error: failureFromCause(exit.cause) }))
              }),
            ),
            Effect.ignore,
            Effect.ensuring(Effect.sync(() => running.delete(message.id))),
          ),
        )
        running.set(message.id, fiber)
        return
      }
      case "Interrupt": {
        const fiber = running.get(message.id)
        if (fiber !== undefined) Runtime.runFork(runtime)(Fiber.interrupt(fiber))
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

  process.on("message", handle)
  for (const message of backlog) handle(message)
}
