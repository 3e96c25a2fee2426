import { mkdirSync } from "node:fs"
import { join, resolve } from "node:path"
import { Clock, Context, Duration, Effect, Exit, Fiber, Option, Redacted, Scope, Stream } from "effect"
import {
  ActionNotFound,
  DeclarationDrift,
  declarationDrift,
  InstanceFailed,
  InstanceId,
  InvokeTimeout,
  isRequiredSecret,
  MissingSecret,
  OutputRejected,
  WorkerStartFailed,
  type ActionDeclaration,
  type DefinitionInvalid,
  type IntegrityMismatch,
  type LockEntry,
  type PluginDeclaration,
  type PluginFailure,
  type PluginInputError,
  type PluginManifest,
  type SchemaViolation,
  type SymlinkEscape,
} from "@plinth/domain"
import type { PluginFiles } from "../loading/PluginFiles.js"
import type { PluginVerifier } from "../loading/PluginVerifier.js"
import { checkConfig, compileContract, type ActionContract, type Contract } from "./Contract.js"
import { failAfter, idleTimer, MAX_TIMER_MILLIS, timeoutMillisOf, within } from "./Deadline.js"
import { ProcessSpawner, type WorkerOutputLine } from "./ProcessSpawner.js"
import { planIsolation, type IsolationTier } from "./Isolation.js"
import { runtimeReadPaths, sandboxFor, workerEntryPath } from "./Sandbox.js"
import { readVerifiedFiles } from "../loading/VerifiedFiles.js"
import {
  startWorker,
  type CallOptions,
  type CancelOptions,
  type ProgressReport,
  type StreamCallOptions,
  type StreamWindow,
  type WorkerConnection,
  type WorkerStartFailure,
} from "./WorkerConnection.js"
import type { FrameCaps } from "../wire/Framing.js"
import type { CallUsage } from "../wire/Protocol.js"
import { SecretStore } from "../stores/SecretStore.js"
import { tracerInstalled } from "../observability/Tracing.js"

/*
 * Plugin instances: one worker process each, started from verified bytes,
 * restarted within a budget, and stopped when the scope that started them closes.
 * The reviewed manifest is the contract (Contract.ts): only its actions can be
 * called, inputs and configs are checked against its schemas before anything
 * is sent, and every result and stream item the worker sends is checked before
 * it reaches the caller.
 */

export interface RestartPolicy {
  /** Restarts allowed within `window`; one more failure marks the instance failed. */
  readonly maxRestarts: number
  readonly window: Duration.DurationInput
}

export const defaultRestartPolicy: RestartPolicy = { maxRestarts: 3, window: "5 minutes" }

export interface StartOptions {
  readonly plugin: { readonly id: string; readonly dir: string; readonly manifest: PluginManifest }
  /** The lock entry the plugin was verified against; the bytes that run are checked against it again, by the PluginVerifier. */
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
   * The boundary around the worker (Isolation.ts): "os" (bubblewrap; the start
   * fails when it is unavailable) or "permissions" (Node's permission model
   * alone). Default: the strongest available, warning once when that is "permissions".
   */
  readonly isolation?: IsolationTier
  /**
   * Caps on one frame of the channel, in bytes of JSON: `fromWorker` bounds a
   * result, chunk or failure (default 64 MiB), `toWorker` an input or the
   * plugin's files (default 512 MiB). See wire/Framing.ts.
   */
  readonly maxFrameBytes?: Partial<FrameCaps>
  /** How many chunks and bytes a stream may have in flight to the host (default 32 chunks, 4 MiB). */
  readonly streamWindow?: StreamWindow
  /** Told when a worker exits without being stopped, and when a replacement has started (the PluginManager's events). */
  readonly onWorkerEvent?: (event: WorkerEvent) => void
  /** Told each line every worker of the instance writes to stdout or stderr (ProcessSpawner's `onOutput`). */
  readonly onOutput?: (line: WorkerOutputLine) => void
}

export type WorkerEvent =
  | { readonly _tag: "crashed"; readonly pid: number | undefined; readonly exitCode: number | null; readonly signal: string | null }
  | { readonly _tag: "restarted"; readonly pid: number | undefined }

export interface InvokeOptions {
  /** The whole call, waiting for a restart or for a cancelled call to stop included, must end within this. Any length works. */
  readonly timeout?: Duration.DurationInput
  readonly onProgress?: (report: ProgressReport) => void
  /** Told the worker's measurements for the call (CPU time, peak RSS) when it ends; not when the worker died first. */
  readonly onUsage?: (usage: CallUsage) => void
  /** If the call is cancelled: its own grace period, and how the cancellation went (the job queue's cancel phases). */
  readonly cancel?: CancelOptions
  /** Told when the call has its slot under the manager's guards and goes to the worker (the job queue clears its block reason). */
  readonly onStarted?: () => void
  /** Told when the manager tries the call again after eviction: the attempt now starting (2 for the first retry) and the failure's tag. */
  readonly onRetry?: (attempt: number, failure: string) => void
}

export interface StreamOptions {
  readonly onProgress?: (report: ProgressReport) => void
  /** As for `invoke`: told once the stream has ended or failed in the worker. */
  readonly onUsage?: (usage: CallUsage) => void
  /**
   * The whole stream (waiting for a worker included) must end within this;
   * otherwise it fails with InvokeTimeout and the call is cancelled like a unary one.
   */
  readonly timeout?: Duration.DurationInput
  /** At most this long between two chunks (or progress reports); otherwise as `timeout`. */
  readonly idleTimeout?: Duration.DurationInput
}

export interface PluginInstance {
  readonly id: InstanceId
  readonly plugin: string
  /** What the worker declared when it loaded: a claim; the manifest decides what can be called. */
  readonly declaration: PluginDeclaration
  /** The actions of the reviewed manifest: the only ones that can be called. */
  readonly actions: Readonly<Record<string, ActionDeclaration>>
  /** The isolation tier its workers run in. */
  readonly isolation: IsolationTier
  /** The pid of the current worker process, if one is running. */
  readonly pid: Effect.Effect<number | undefined>
  readonly invoke: (action: string, input: unknown, options?: InvokeOptions) => Effect.Effect<unknown, PluginFailure>
  readonly stream: (action: string, input: unknown, options?: StreamOptions) => Stream.Stream<unknown, PluginFailure>
  /** Runs the plugin's `onEnable`/`onDisable` hook in the current worker (restarting a dead one first). */
  readonly lifecycle: (hook: "enable" | "disable") => Effect.Effect<void, PluginFailure>
  /** What the current worker reported for its last finished call (none before one, nor after a restart). */
  readonly usage: Effect.Effect<CallUsage | undefined>
}

/** A config the manifest's config schema refuses is a PluginInputError, found before any worker starts. */
export type StartFailure =
  | WorkerStartFailed
  | DefinitionInvalid
  | DeclarationDrift
  | IntegrityMismatch
  | SymlinkEscape
  | SchemaViolation
  | PluginInputError
  | MissingSecret

let instanceCounter = 0

type DeliveredSecrets = ReadonlyArray<{ readonly name: string; readonly value: Redacted.Redacted<string> }>

/**
 * The plugin's declared secrets, read from the SecretStore in the context (if
 * any), before any process starts: a required one that is not set refuses the
 * start with MissingSecret naming every such secret. Names the manifest does
 * not declare are never read. Without a SecretStore, nothing is set.
 */
const declaredSecrets = (plugin: StartOptions["plugin"]): Effect.Effect<DeliveredSecrets, MissingSecret | WorkerStartFailed> =>
  Effect.gen(function* () {
    const declared = plugin.manifest.secrets ?? []
    if (declared.length === 0) return []
    const store = yield* Effect.serviceOption(SecretStore)
    const found = Option.isSome(store)
      ? yield* store.value.get(plugin.id, declared.map((d) => d.name)).pipe(
          Effect.mapError((error) => new WorkerStartFailed({ plugin: plugin.id, reason: error.message, stderrTail: "" })),
        )
      : new Map<string, Redacted.Redacted<string>>()
    const missing = declared.filter((d) => isRequiredSecret(d) && !found.has(d.name)).map((d) => d.name)
    if (missing.length > 0) return yield* new MissingSecret({ plugin: plugin.id, names: missing })
    return [...found].map(([name, value]) => ({ name, value }))
  })

/** The spawner, with `onOutput` told every line of each process it starts (before the process can have written any). */
const withOutput = (context: Context.Context<ProcessSpawner>, onOutput: ((line: WorkerOutputLine) => void) | undefined) => {
  if (onOutput === undefined) return context
  const spawner = Context.get(context, ProcessSpawner)
  return Context.add(context, ProcessSpawner, {
    spawn: (request) => Effect.tap(spawner.spawn(request), (child) => Effect.sync(() => child.onOutput?.(onOutput))),
  })
}

/** Starts an instance inside the current scope; closing the scope stops its worker. */
export const startInstance = (
  options: StartOptions,
): Effect.Effect<PluginInstance, StartFailure, Scope.Scope | ProcessSpawner | PluginFiles | PluginVerifier> => start(options, "run")

/**
 * "describe" starts a worker only to read its declaration, which is how a
 * stale manifest gets regenerated: the manifest's schemas are neither compiled
 * nor applied to the config, and no action can be called.
 */
const start = (
  options: StartOptions,
  purpose: "run" | "describe",
): Effect.Effect<PluginInstance, StartFailure, Scope.Scope | ProcessSpawner | PluginFiles | PluginVerifier> =>
  Effect.gen(function* () {
    const { plugin } = options
    const instanceId = options.instanceId ?? InstanceId.make(`${plugin.id}#${++instanceCounter}`)
    // Describing reads only the declaration: its worker gets no secrets.
    const secrets = purpose === "run" ? yield* declaredSecrets(plugin) : []
    const files = yield* readVerifiedFiles(plugin, options.locked)
    const permissions = plugin.manifest.permissions
    const dataDir =
      permissions?.dataDir === true ? resolve(options.dataRoot ?? join(".plinth", "data"), plugin.id) : undefined
    if (dataDir !== undefined) mkdirSync(dataDir, { recursive: true })
    const sandbox = yield* Effect.try({
      try: () => sandboxFor({ permissions, resources: plugin.manifest.resources, dataDir, hostEnv: process.env }),
      catch: (error) => new WorkerStartFailed({ plugin: plugin.id, reason: String(error), stderrTail: "" }),
    })
    const isolation = yield* planIsolation({ requested: options.isolation, permissions, readPaths: runtimeReadPaths(), dataDir }).pipe(
      Effect.mapError((unavailable) => new WorkerStartFailed({ plugin: plugin.id, reason: unavailable.reason, stderrTail: "" })),
    )
    // setTimeout fires a grace of 2^31 ms or more at once; none that long is meant literally.
    const interruptGrace = Duration.millis(Math.min(Duration.toMillis(options.interruptGrace ?? "2 seconds"), MAX_TIMER_MILLIS))
    const policy = options.restartPolicy ?? defaultRestartPolicy
    const spawnContext = withOutput(yield* Effect.context<ProcessSpawner>(), options.onOutput)

    const launch = Effect.gen(function* () {
      const scope = yield* Scope.make()
      const connection = yield* startWorker({
        plugin: plugin.id,
        entry: plugin.manifest.entry,
        files,
        config: options.config ?? {},
        env: permissions?.env ?? [],
        dataDir,
        secrets,
        spawn: { modulePath: workerEntryPath(), launcher: isolation.launcher, execArgv: sandbox.execArgv, env: sandbox.env, cwd: isolation.cwd },
        startTimeout: options.startTimeout ?? "10 seconds",
        interruptGrace,
        maxFrameBytes: options.maxFrameBytes,
        streamWindow: options.streamWindow,
      }).pipe(
        Effect.withSpan("plinth.instance.start", { attributes: { "plinth.plugin": plugin.id, "plinth.instance": instanceId }, captureStackTrace: false }),
        Scope.extend(scope),
        Effect.provide(spawnContext),
        Effect.onExit((exit) => (Exit.isFailure(exit) ? Scope.close(scope, exit) : Effect.void)),
      )
      const onWorkerEvent = options.onWorkerEvent
      // Forked after the worker was acquired, so closing the scope stops this watch before it stops the worker: a stop is no crash.
      if (onWorkerEvent !== undefined) {
        yield* Effect.forkIn(
          Effect.flatMap(connection.exited, (exit) =>
            Effect.sync(() => onWorkerEvent({ _tag: "crashed", pid: connection.pid, exitCode: exit.exitCode, signal: exit.signal })),
          ),
          scope,
        )
      }
      return { connection, scope }
    })

    if (purpose === "run") yield* checkConfig(plugin.id, plugin.manifest, options.config ?? {})
    // A describing instance can call nothing.
    const noActions: Contract = { action: (name) => new ActionNotFound({ plugin: plugin.id, action: name }) }
    // The schemas compile while the worker boots.
    const compiling = yield* Effect.fork(purpose === "run" ? compileContract(plugin.id, plugin.manifest) : Effect.succeed(noActions))
    let current = yield* launch
    yield* Effect.addFinalizer(() => Scope.close(current.scope, Exit.void))
    const contract = yield* Fiber.join(compiling)
    const declaration = current.connection.declaration
    if (options.drift !== "ignore") {
      const differences = declarationDrift(plugin.manifest, declaration)
      if (differences.length > 0) return yield* new DeclarationDrift({ plugin: plugin.id, differences })
    }

    const restarts: Array<number> = []
    let failed: InstanceFailed | undefined
    const lock = yield* Effect.makeSemaphore(1)
    const instanceScope = yield* Effect.scope
    /** A restart under way: it belongs to the instance, not to the caller that began it. */
    let restarting: Fiber.RuntimeFiber<WorkerConnection, WorkerStartFailure> | undefined

    /**
     * The live worker, after restarting a dead one if the budget allows.
     * Every wait here can be interrupted (a caller's timeout covers it), but
     * the restart itself runs in the instance's scope: a caller that gives up
     * does not abort it, and the next caller joins it instead of starting another.
     */
    const acquire: Effect.Effect<WorkerConnection, WorkerStartFailure | InstanceFailed> = lock.withPermits(1)(
      Effect.gen(function* () {
        if (failed !== undefined) return yield* failed
        if (restarting !== undefined) return yield* Fiber.join(restarting)
        yield* current.connection.cancellationsSettled
        // A worker the host has killed may not be reaped yet: a call sent to it now would only fail. Wait for its exit.
        if (current.connection.isDying()) yield* current.connection.exited
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
        const restart = Effect.gen(function* () {
          yield* Scope.close(current.scope, Exit.void)
          const next = yield* launch
          current = next
          options.onWorkerEvent?.({ _tag: "restarted", pid: next.connection.pid })
          return next.connection
        }).pipe(Effect.ensuring(Effect.sync(() => (restarting = undefined))))
        restarting = yield* Effect.forkIn(restart, instanceScope)
        return yield* Fiber.join(restarting)
      }),
    )

    const spanOf = (action: string) => ({
      attributes: { "plinth.plugin": plugin.id, "plinth.instance": instanceId, "plinth.action": action },
      captureStackTrace: false,
    })

    const timedOut = (action: string, timeoutMillis: number) => () => new InvokeTimeout({ plugin: plugin.id, action, timeoutMillis })

    /** Fails the call and kills the worker that broke the contract; its other calls fail as WorkerExited. */
    const rejectOutput = (connection: WorkerConnection, action: string, detail: string) =>
      Effect.zipRight(
        connection.kill(`it sent output for '${action}' that its manifest does not allow`),
        Effect.fail(new OutputRejected({ plugin: plugin.id, action, detail })),
      )

    const checkedResult = (connection: WorkerConnection, action: string, declared: ActionContract, call: Effect.Effect<unknown, PluginFailure>) =>
      Effect.flatMap(call, (value) => {
        const problem = declared.checkOutput(value)
        return problem === undefined ? Effect.succeed(value) : rejectOutput(connection, action, `result: ${problem}`)
      })

    /*
     * The happy path (no tracer installed, a live worker, nothing being
     * cancelled, a timeout setTimeout can hold) is the contract checks, one
     * fiber-runtime read, the connection's own Effect.async and one flatMap
     * for the result check: every extra combinator here is a measurable share
     * of a call's host CPU. A span costs ~10 µs (measured), so calls get one
     * only when a tracer has been installed, not under the built-in default.
     * Otherwise one deadline covers the whole call: waiting for a cancelled
     * call to stop or for a restart, then the call itself.
     */
    const invoke = (action: string, input: unknown, invokeOptions?: InvokeOptions): Effect.Effect<unknown, PluginFailure> => {
      const declared = contract.action(action, false)
      if ("_tag" in declared) return Effect.fail(declared)
      const invalid = declared.checkInput(input)
      if (invalid !== undefined) return Effect.fail(invalid)
      const onProgress = invokeOptions?.onProgress
      const onUsage = invokeOptions?.onUsage
      const cancel = invokeOptions?.cancel
      const timeoutMillis = timeoutMillisOf(invokeOptions?.timeout)
      return Effect.withFiberRuntime((fiber) => {
        const connection = current.connection
        let call: Effect.Effect<unknown, PluginFailure>
        if (failed === undefined && connection.isIdleAndAlive() && (timeoutMillis === undefined || timeoutMillis <= MAX_TIMER_MILLIS)) {
          const callOptions: CallOptions =
            timeoutMillis === undefined ? { onProgress, onUsage, cancel } : { onProgress, onUsage, cancel, timeoutMillis, onTimeout: timedOut(action, timeoutMillis) }
          call = checkedResult(connection, action, declared, connection.call(action, input, callOptions))
        } else {
          const whole = Effect.flatMap(acquire, (connection) =>
            checkedResult(connection, action, declared, connection.call(action, input, { onProgress, onUsage, cancel })),
          )
          call = timeoutMillis === undefined ? whole : within(whole, timeoutMillis, timedOut(action, timeoutMillis))
        }
        return !tracerInstalled(fiber) ? call : Effect.withSpan(call, "plinth.invoke", spanOf(action))
      })
    }

    const stream = (action: string, input: unknown, streamOptions?: StreamOptions): Stream.Stream<unknown, PluginFailure> => {
      const declared = contract.action(action, true)
      if ("_tag" in declared) return Stream.fail(declared)
      const invalid = declared.checkInput(input)
      if (invalid !== undefined) return Stream.fail(invalid)
      const timeoutMillis = timeoutMillisOf(streamOptions?.timeout)
      const idleMillis = timeoutMillisOf(streamOptions?.idleTimeout)
      return Stream.unwrap(
        Effect.suspend(() => {
          const started = Date.now()
          // Idle timeouts setTimeout cannot hold are kept here; chunks and progress restart them.
          const longIdle =
            idleMillis !== undefined && idleMillis > MAX_TIMER_MILLIS ? idleTimer(idleMillis, timedOut(action, idleMillis)) : undefined
          const userProgress = streamOptions?.onProgress
          const onProgress =
            longIdle === undefined
              ? userProgress
              : (report: ProgressReport) => {
                  longIdle.touch()
                  userProgress?.(report)
                }
          const opened = Effect.map(acquire, (connection) => {
            const left = timeoutMillis === undefined ? undefined : Math.max(0, timeoutMillis - (Date.now() - started))
            const callOptions: StreamCallOptions = {
              onProgress,
              onUsage: streamOptions?.onUsage,
              ...(left !== undefined && left <= MAX_TIMER_MILLIS ? { timeoutMillis: left, onTimeout: timedOut(action, timeoutMillis!) } : {}),
              ...(idleMillis !== undefined && longIdle === undefined
                ? { idleTimeoutMillis: idleMillis, onIdleTimeout: timedOut(action, idleMillis) }
                : {}),
            }
            const checked = connection.stream(action, input, callOptions).pipe(
              Stream.mapChunksEffect((chunk) => {
                for (const value of chunk) {
                  const problem = declared.checkOutput(value)
                  if (problem !== undefined) return rejectOutput(connection, action, `stream item: ${problem}`)
                }
                longIdle?.touch()
                return Effect.succeed(chunk)
              }),
            )
            const idled = longIdle === undefined ? checked : Stream.interruptWhen(checked, longIdle.expired)
            // A deadline past setTimeout's range is kept here rather than in the connection.
            return left !== undefined && left > MAX_TIMER_MILLIS
              ? Stream.interruptWhen(idled, failAfter(left, timedOut(action, timeoutMillis!)))
              : idled
          })
          // The deadline covers waiting for a worker (a cancelled call to stop, a restart) too.
          return timeoutMillis === undefined ? opened : within(opened, timeoutMillis, timedOut(action, timeoutMillis))
        }),
      )
    }

    return {
      id: instanceId,
      plugin: plugin.id,
      declaration,
      actions: purpose === "run" ? (plugin.manifest.actions ?? {}) : {},
      isolation: isolation.tier,
      // One step: the queue reads it (through the manager's `get`) twice per job.
      pid: Effect.sync(() => current.connection.pid),
      invoke,
      stream,
      lifecycle: (hook) => Effect.flatMap(acquire, (connection) => connection.lifecycle(hook)),
      usage: Effect.sync(() => current.connection.lastUsage()),
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
  Effect.scoped(Effect.map(start({ ...options, drift: "ignore" }, "describe"), (instance) => instance.declaration))
