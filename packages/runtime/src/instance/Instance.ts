import { mkdirSync } from "node:fs"
import { join, resolve } from "node:path"
import { Clock, Deferred, Duration, Effect, Exit, Option, Scope, Stream } from "effect"
import {
  DeclarationDrift,
  declarationDrift,
  InstanceFailed,
  InstanceId,
  InvokeTimeout,
  WorkerStartFailed,
  type IntegrityMismatch,
  type LockEntry,
  type PluginDeclaration,
  type PluginFailure,
  type PluginManifest,
  type SchemaViolation,
  type SymlinkEscape,
} from "@plinth/domain"
import type { Hashing } from "../hashing/Hashing.js"
import type { PluginFiles } from "../loading/PluginFiles.js"
import { ProcessSpawner } from "./ProcessSpawner.js"
import { sandboxFor, workerEntryPath } from "./Sandbox.js"
import { readVerifiedFiles } from "./VerifiedFiles.js"
import { startWorker, type CallOptions, type ProgressReport, type StreamWindow, type WorkerConnection } from "./WorkerConnection.js"
import type { FrameCaps } from "../wire/Framing.js"

/*
 * Plugin instances: one worker process each, started from verified bytes,
 * restarted within a budget, and stopped when the scope that started them closes.
 */

export interface RestartPolicy {
  /** Restarts allowed within `window`; one more failure marks the instance failed. */
  readonly maxRestarts: number
  readonly window: Duration.DurationInput
}

export const defaultRestartPolicy: RestartPolicy = { maxRestarts: 3, window: "5 minutes" }

export interface StartOptions {
  readonly plugin: { readonly id: string; readonly dir: string; readonly manifest: PluginManifest }
  /** The lock entry the plugin was verified against; the bytes that run are checked against it again. */
  readonly locked: LockEntry
  readonly config?: unknown
  readonly instanceId?: InstanceId
  /** Where `dataDir` grants are created: `<dataRoot>/<plugin id>`. Default `.plinth/data`. */
  readonly dataRoot?: string
  readonly startTimeout?: Duration.DurationInput
  /** How long a cancelled call may take to stop before its worker is killed. */
  readonly interruptGrace?: Duration.DurationInput
  readonly restartPolicy?: RestartPolicy
  /**
   * "refuse" (the default) fails the start with DeclarationDrift when the live
   * declaration differs from the manifest: the manifest is what was reviewed and
   * locked and what `plugins show` prints, so running anything else would make
   * it lie. "ignore" exists for `describePlugin`, which produces the manifest.
   */
  readonly drift?: "refuse" | "ignore"
  /**
   * Caps on one frame of the channel, in bytes of JSON: `fromWorker` bounds a
   * result, chunk or failure (default 64 MiB), `toWorker` an input or the
   * plugin's files (default 512 MiB). See wire/Framing.ts.
   */
  readonly maxFrameBytes?: Partial<FrameCaps>
  /** How many chunks and bytes a stream may have in flight to the host (default 32 chunks, 4 MiB). */
  readonly streamWindow?: StreamWindow
}

export interface InvokeOptions {
  readonly timeout?: Duration.DurationInput
  readonly onProgress?: (report: ProgressReport) => void
}

export interface StreamOptions {
  readonly onProgress?: (report: ProgressReport) => void
  /** The whole stream must end within this; otherwise it fails with InvokeTimeout and the call is cancelled like a unary one. */
  readonly timeout?: Duration.DurationInput
  /** At most this long between two chunks (or progress reports); otherwise as `timeout`. */
  readonly idleTimeout?: Duration.DurationInput
}

export interface PluginInstance {
  readonly id: InstanceId
  readonly plugin: string
  readonly declaration: PluginDeclaration
  /** The pid of the current worker process, if one is running. */
  readonly pid: Effect.Effect<number | undefined>
  readonly invoke: (action: string, input: unknown, options?: InvokeOptions) => Effect.Effect<unknown, PluginFailure>
  readonly stream: (action: string, input: unknown, options?: StreamOptions) => Stream.Stream<unknown, PluginFailure>
}

export type StartFailure = WorkerStartFailed | DeclarationDrift | IntegrityMismatch | SymlinkEscape | SchemaViolation

let instanceCounter = 0

const defaultTracer = Effect.runSync(Effect.tracer)

/** Starts an instance inside the current scope; closing the scope stops its worker. */
export const startInstance = (
  options: StartOptions,
): Effect.Effect<PluginInstance, StartFailure, Scope.Scope | ProcessSpawner | PluginFiles | Hashing> =>
  Effect.gen(function* () {
    const { plugin } = options
    const instanceId = options.instanceId ?? InstanceId.make(`${plugin.id}#${++instanceCounter}`)
    const files = yield* readVerifiedFiles(plugin, options.locked)
    const permissions = plugin.manifest.permissions
    const dataDir =
      permissions?.dataDir === true ? resolve(options.dataRoot ?? join(".plinth", "data"), plugin.id) : undefined
    if (dataDir !== undefined) mkdirSync(dataDir, { recursive: true })
    const sandbox = yield* Effect.try({
      try: () => sandboxFor({ permissions, pluginDir: resolve(plugin.dir), dataDir, hostEnv: process.env }),
      catch: (error) => new WorkerStartFailed({ plugin: plugin.id, reason: String(error), stderrTail: "" }),
    })
    const interruptGrace = options.interruptGrace ?? "2 seconds"
    const policy = options.restartPolicy ?? defaultRestartPolicy
    const spawnContext = yield* Effect.context<ProcessSpawner>()

    const launch = Effect.gen(function* () {
      const scope = yield* Scope.make()
      const connection = yield* startWorker({
        plugin: plugin.id,
        entry: plugin.manifest.entry,
        files,
        config: options.config ?? {},
        env: permissions?.env ?? [],
        dataDir,
        spawn: { modulePath: workerEntryPath, execArgv: sandbox.execArgv, env: sandbox.env, cwd: resolve(plugin.dir) },
        startTimeout: options.startTimeout ?? "10 seconds",
        interruptGrace,
        maxFrameBytes: options.maxFrameBytes,
        streamWindow: options.streamWindow,
      }).pipe(
        Scope.extend(scope),
        Effect.provide(spawnContext),
        Effect.onExit((exit) => (Exit.isFailure(exit) ? Scope.close(scope, exit) : Effect.void)),
      )
      return { connection, scope }
    })

    let current = yield* launch
    yield* Effect.addFinalizer(() => Scope.close(current.scope, Exit.void))
    const declaration = current.connection.declaration
    if (options.drift !== "ignore") {
      const differences = declarationDrift(plugin.manifest, declaration)
      if (differences.length > 0) return yield* new DeclarationDrift({ plugin: plugin.id, differences })
    }

    const restarts: Array<number> = []
    let failed: InstanceFailed | undefined
    const lock = yield* Effect.makeSemaphore(1)

    /** The live worker, after restarting a dead one if the budget allows. */
    const acquire: Effect.Effect<WorkerConnection, WorkerStartFailed | InstanceFailed> = lock.withPermits(1)(
      Effect.gen(function* () {
        if (failed !== undefined) return yield* failed
        yield* current.connection.cancellationsSettled
        if (!(yield* current.connection.hasExited)) return current.connection
        const exit = yield* current.connection.exited
        const now = yield* Clock.currentTimeMillis
        const windowStart = now - Duration.toMillis(policy.window)
        while (restarts.length > 0 && restarts[0]! < windowStart) restarts.shift()
        if (restarts.length >= policy.maxRestarts) {
          failed = new InstanceFailed({
            plugin: plugin.id,
            instance: instanceId,
            restarts: restarts.length,
            lastError: `the worker exited (code ${exit.exitCode}, signal ${exit.signal})`,
          })
          return yield* failed
        }
        restarts.push(now)
        yield* Scope.close(current.scope, Exit.void)
        const next = yield* launch
        current = next
        return next.connection
      }),
    )

    const spanOf = (action: string) => ({ attributes: { plugin: plugin.id, instance: instanceId, action }, captureStackTrace: false })

    const unaryOptions = (action: string, invokeOptions: InvokeOptions | undefined): CallOptions | undefined => {
      if (invokeOptions === undefined) return undefined
      const timeout = invokeOptions.timeout
      if (timeout === undefined) return { onProgress: invokeOptions.onProgress }
      const timeoutMillis = Duration.toMillis(timeout)
      return {
        onProgress: invokeOptions.onProgress,
        timeoutMillis,
        onTimeout: () => new InvokeTimeout({ plugin: plugin.id, action, timeoutMillis }),
      }
    }

    /*
     * The happy path (no tracer installed, a live worker, nothing being
     * cancelled) is one fiber-runtime read and the connection's own
     * Effect.async: every extra combinator here is a measurable share of a
     * call's host CPU. A span costs ~10 µs (measured), so calls get one only
     * when a tracer has been installed, not under the built-in default.
     */
    const invoke = (action: string, input: unknown, invokeOptions?: InvokeOptions): Effect.Effect<unknown, PluginFailure> => {
      const callOptions = unaryOptions(action, invokeOptions)
      return Effect.withFiberRuntime((fiber) => {
        const connection = current.connection
        // A dead worker or a cancellation winding down goes through the restart lock.
        const call =
          failed === undefined && connection.isIdleAndAlive()
            ? connection.call(action, input, callOptions)
            : Effect.flatMap(acquire, (connection) => connection.call(action, input, callOptions))
        return fiber.currentTracer === defaultTracer ? call : Effect.withSpan(call, "plinth.invoke", spanOf(action))
      })
    }

    const stream = (action: string, input: unknown, streamOptions?: StreamOptions) => {
      const timeout = streamOptions?.timeout
      const idleTimeout = streamOptions?.idleTimeout
      const callOptions = {
        onProgress: streamOptions?.onProgress,
        ...(timeout !== undefined
          ? {
              timeoutMillis: Duration.toMillis(timeout),
              onTimeout: () => new InvokeTimeout({ plugin: plugin.id, action, timeoutMillis: Duration.toMillis(timeout) }),
            }
          : {}),
        ...(idleTimeout !== undefined
          ? {
              idleTimeoutMillis: Duration.toMillis(idleTimeout),
              onIdleTimeout: () => new InvokeTimeout({ plugin: plugin.id, action, timeoutMillis: Duration.toMillis(idleTimeout) }),
            }
          : {}),
      }
      return Stream.unwrap(Effect.map(acquire, (connection) => connection.stream(action, input, callOptions)))
    }

    return {
      id: instanceId,
      plugin: plugin.id,
      declaration,
      pid: Effect.map(Effect.option(Effect.suspend(() => Effect.succeed(current.connection.pid))), Option.getOrUndefined),
      invoke,
      stream,
    } satisfies PluginInstance
  })

/** Calls an action; bad input fails typed before plugin code runs. */
export const invoke = (instance: PluginInstance, action: string, input: unknown, options?: InvokeOptions) =>
  instance.invoke(action, input, options)

/** Calls a streaming action; chunks arrive as the plugin produces them. */
export const invokeStream = (instance: PluginInstance, action: string, input: unknown, options?: StreamOptions) =>
  instance.stream(action, input, options)

/**
 * Loads a plugin in a sandboxed worker and returns what it declares: the
 * `actions` and `config` parts of its `plugin.json`, generated from its Schemas.
 */
export const describePlugin = (options: Omit<StartOptions, "drift">) =>
  Effect.scoped(Effect.map(startInstance({ ...options, drift: "ignore" }), (instance) => instance.declaration))
