import { Cause, Context, Duration, Effect, ExecutionStrategy, Exit, Layer, Option, PubSub, Queue, Scope, Stream, Take } from "effect"
import {
  AdmissionRefused,
  AdmissionTimeout,
  breakerStep,
  canonicalJson,
  categoryOf,
  ConfigInvalid,
  DEFAULT_BREAKER_THRESHOLD,
  DEFAULT_MAX_CONCURRENT,
  expectedMiB,
  freshInstanceId,
  InstanceId,
  instanceIdProblem,
  InstanceNotLoaded,
  InvalidInstanceId,
  InvokeTimeout,
  isPluginFailure,
  PluginDisabled,
  PluginTransientError,
  printableValue,
  WorkerStartFailed,
  type LockEntry,
  type ManagerEvent,
  type PluginFailure,
  type PluginId,
  type PluginManifest,
  type RunningInstance,
} from "@plinth/domain"
import {
  startInstance,
  type InvokeOptions,
  type PluginInstance,
  type RestartPolicy,
  type StartFailure,
  type StreamOptions,
  type WorkerEvent,
} from "../instance/Instance.js"
import type { IsolationTier } from "../instance/Isolation.js"
import type { WorkerOutputLine } from "../instance/OutputLines.js"
import { sampleProcessEffect, type ProcessSample } from "../instance/ProcessStats.js"
import { discoverAndVerify, namingLock } from "../loading/Loader.js"
import { PluginNotFound } from "../loading/PluginNotFound.js"
import { CallTrace, type CallRecord } from "../observability/CallTrace.js"
import { costOf, makeAdmission, resolveScheduling, type SchedulingOptions } from "./Admission.js"
import { makeFairGate, type FairGate } from "./FairGate.js"
import { checkHostConfig } from "./HostConfig.js"
import { ManagerConfigs, makeInMemoryManagerConfigs } from "./ManagerConfigs.js"
import { makeRetryAfterEviction } from "./RetryAfterEviction.js"
import { EmpiricalStore } from "../stores/EmpiricalStore.js"
import type { StoreUnavailable } from "../stores/StoreErrors.js"
import { makeUsageRecorder, type InstanceStats } from "./Usage.js"
import type { CallUsage } from "../wire/Protocol.js"
import { tracerInstalled } from "../observability/Tracing.js"

/*
 * The PluginManager owns many instances of the verified plugins over their
 * whole life: it starts and stops their workers, keeps each one's config and
 * enabled state, guards calls (disabled instances, a circuit breaker, a
 * concurrency cap) and tells a host what happened as a stream of events.
 * Every plugin is verified before any worker starts; the layer's scope owns
 * every worker, so closing it stops them all. See ADR 0027.
 */

export interface PluginManagerOptions extends SchedulingOptions {
  /** The folder holding one sub-folder per plugin. */
  readonly root: string
  /** The `PLUGINS.lock` every plugin is verified against before any starts. */
  readonly lock: string
  /** Where `dataDir` grants are created: `<dataRoot>/<plugin id>`. Default `.plinth/data`. */
  readonly dataRoot?: string
  readonly isolation?: IsolationTier
  readonly startTimeout?: Duration.DurationInput
  readonly interruptGrace?: Duration.DurationInput
  readonly restartPolicy?: RestartPolicy
  /** Consecutive failures (input errors aside) after which an instance is disabled; default 5. */
  readonly breakerThreshold?: number
  /** Calls an instance runs at once when its manifest names no `resources.maxConcurrent`; default 64. */
  readonly maxConcurrent?: number
  /** Calls that may wait for an instance's cap before more are refused (transient); default 1024. */
  readonly maxWaiting?: number
}

export interface LoadInstanceOptions {
  /** The config; for the default instance, default the remembered one, else `{}`. */
  readonly config?: unknown
  /** 1–64 characters of a-z, 0-9, '_' and '-'; default the plugin id (the default instance). */
  readonly instanceId?: unknown
  /** A fresh instance `<plugin>-<6 hex>` beside any others. */
  readonly newInstance?: boolean
  /** True (the default): unknown config keys are refused. False: they are dropped. */
  readonly strict?: boolean
  /** Overrides the manifest's `resources.maxConcurrent` for this instance. */
  readonly maxConcurrent?: number
}

export interface ConfigOptions {
  readonly strict?: boolean
}

export interface ManagedInstance {
  readonly id: string
  readonly plugin: string
  readonly config: Readonly<Record<string, unknown>>
  readonly enabled: boolean
  /** Why it is disabled, when its circuit breaker disabled it. */
  readonly disabledReason?: string | undefined
  /** The current worker's pid, if one is running. */
  readonly pid: number | undefined
  readonly consecutiveFailures: number
  readonly maxConcurrent: number
  readonly running: number
  readonly waiting: number
}

export type LoadFailure = StartFailure | ConfigInvalid | InvalidInstanceId | PluginNotFound | AdmissionRefused | AdmissionTimeout
export type CallFailure = PluginFailure | InstanceNotLoaded | PluginDisabled

/** One plugin with a default config, for hosts that use it in many places. */
export interface BoundPlugin {
  readonly plugin: string
  readonly instanceId: string
  /** Loads the bound instance with the default config unless it is loaded. */
  readonly load: Effect.Effect<ManagedInstance, LoadFailure>
  readonly execute: (action: string, input: unknown, options?: InvokeOptions) => Effect.Effect<unknown, CallFailure | LoadFailure>
  readonly stream: (action: string, input: unknown, options?: StreamOptions) => Stream.Stream<unknown, CallFailure | LoadFailure>
}

export interface PluginManagerService {
  /** The ids of the verified plugins, sorted. */
  readonly plugins: ReadonlyArray<string>
  /** Each verified plugin's tree digest, as its lock entry pins it, sorted by plugin id: the code this manager runs. */
  readonly verifiedDigests: ReadonlyArray<{ readonly plugin: string; readonly digest: string }>
  readonly load: (plugin: string, options?: LoadInstanceOptions) => Effect.Effect<ManagedInstance, LoadFailure>
  readonly unload: (id: string) => Effect.Effect<void, InstanceNotLoaded>
  /** A fresh worker for the instance, with `config` (checked as on load) or its current one. */
  readonly reload: (id: string, config?: unknown, options?: ConfigOptions) => Effect.Effect<ManagedInstance, LoadFailure | InstanceNotLoaded>
  /** Checks the config as `load` does and reloads the instance with it; a refused config leaves the instance as it was. */
  readonly updateConfig: (id: string, config: unknown, options?: ConfigOptions) => Effect.Effect<ManagedInstance, LoadFailure | InstanceNotLoaded>
  readonly list: Effect.Effect<ReadonlyArray<ManagedInstance>>
  readonly get: (id: string) => Effect.Effect<ManagedInstance, InstanceNotLoaded>
  /** The actions the instance's manifest declares, sorted. */
  readonly actions: (id: string) => Effect.Effect<ReadonlyArray<string>, InstanceNotLoaded>
  /** Enables a disabled instance; `onEnable` runs in its worker once no call is in flight. */
  readonly enable: (id: string) => Effect.Effect<void, InstanceNotLoaded | PluginFailure>
  /** New calls are refused with PluginDisabled; `onDisable` runs once the calls in flight have ended. */
  readonly disable: (id: string) => Effect.Effect<void, InstanceNotLoaded | PluginFailure>
  /** Clears the failure count and enables the instance (after its breaker opened, say). */
  readonly reset: (id: string) => Effect.Effect<void, InstanceNotLoaded | PluginFailure>
  readonly execute: (id: string, action: string, input: unknown, options?: InvokeOptions) => Effect.Effect<unknown, CallFailure>
  readonly stream: (id: string, action: string, input: unknown, options?: StreamOptions) => Stream.Stream<unknown, CallFailure>
  /** Starts `count` idle workers for the plugin (with its remembered config) that later loads take instead of spawning. */
  readonly prefetch: (plugin: string, count: number) => Effect.Effect<void, LoadFailure>
  /** How many warm workers wait for the plugin. */
  readonly warm: (plugin: string) => Effect.Effect<number>
  /** Lifecycle events from the moment the stream starts running. */
  readonly events: Stream.Stream<ManagerEvent>
  /** A subscription that holds every event from now on, until its scope closes. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<ManagerEvent>, never, Scope.Scope>
  readonly bind: (plugin: string, defaultConfig?: unknown, options?: { readonly instanceId?: string }) => BoundPlugin
  /** The measured cost of the instance's calls (the EmpiricalStore's record for its plugin, digest and config) and its worker's last report. */
  readonly stats: (id: string) => Effect.Effect<InstanceStats, InstanceNotLoaded | StoreUnavailable>
  /**
   * The lines the instance's workers write to stdout and stderr from the
   * moment the stream starts, across restarts and reloads (the instance need
   * not be loaded yet). Each reader has its own buffer (`buffer` lines,
   * default 1000): a reader that falls behind loses lines, and is told how
   * many in a line of their own. Ends when the manager closes.
   */
  readonly output: (id: string, options?: OutputOptions) => Stream.Stream<WorkerOutputLine>
  /** As `output`, as a queue that holds every line from now on, until its scope closes. */
  readonly subscribeOutput: (id: string, options?: OutputOptions) => Effect.Effect<Queue.Dequeue<WorkerOutputLine>, never, Scope.Scope>
  /** The last `n` lines (default and at most RECENT_OUTPUT_LINES, 200) the instance's workers wrote while it was loaded, oldest first. */
  readonly recentOutput: (id: string, n?: number) => Effect.Effect<ReadonlyArray<WorkerOutputLine>>
  /** The memory and CPU time of the instance's current worker process (ProcessStats.ts); none when it has none running, or off Linux. */
  readonly snapshot: (id: string) => Effect.Effect<Option.Option<ProcessSample>>
}

export interface OutputOptions {
  /** Lines a reader may hold unread before lines are dropped for it; default 1000. */
  readonly buffer?: number
}

/** Lines of output kept per loaded instance for `recentOutput`. */
export const RECENT_OUTPUT_LINES = 200

export class PluginManager extends Context.Tag("@plinth/runtime/PluginManager")<PluginManager, PluginManagerService>() {}

interface VerifiedPlugin {
  readonly id: string
  readonly dir: string
  readonly manifest: PluginManifest
  readonly locked: LockEntry
}

/** A started worker with the scope that stops it, and which managed instance it serves (none while warm). */
interface Started {
  readonly instance: PluginInstance
  readonly scope: Scope.CloseableScope
  readonly configKey: string
  readonly owner: { id: string | undefined }
  /** When it started, on the manager's use clock: a warm worker's last use. */
  readonly since: number
}

interface Managed {
  readonly id: string
  readonly plugin: VerifiedPlugin
  config: Readonly<Record<string, unknown>>
  started: Started
  enabled: boolean
  disabledReason: string | undefined
  /** The enabled state the worker's hooks last saw; a hook runs when it differs from `enabled` and nothing is in flight. */
  applied: boolean
  hookRunning: boolean
  inFlight: number
  failures: number
  /** When a call last began or ended on it, on the manager's use clock (the eviction order). */
  lastUsed: number
  readonly maxConcurrent: number
  readonly gate: FairGate
}

const randomBytes = (n: number) => crypto.getRandomValues(new Uint8Array(n))

const callSpan = (plugin: string, instance: string, action: string, attempt?: number) => ({
  attributes: { "plinth.plugin": plugin, "plinth.instance": instance, "plinth.action": action, ...(attempt !== undefined ? { "plinth.attempt": attempt } : {}) },
  captureStackTrace: false,
})

export const makePluginManager = (options: PluginManagerOptions) =>
  Effect.gen(function* () {
    const { lock, discovered } = yield* discoverAndVerify({ root: options.root, lock: options.lock })
    const verified = new Map<string, VerifiedPlugin>(
      discovered.map((plugin) => [plugin.id, { ...plugin, locked: lock.plugins[plugin.id as PluginId]! }]),
    )
    const configs = Option.getOrElse(yield* Effect.serviceOption(ManagerConfigs), makeInMemoryManagerConfigs)
    const usage = makeUsageRecorder(yield* EmpiricalStore)
    const startContext = yield* Effect.context<Effect.Effect.Context<ReturnType<typeof startInstance>>>()
    const managerScope = yield* Effect.scope
    const events = yield* PubSub.unbounded<ManagerEvent>()
    yield* Effect.addFinalizer(() => PubSub.shutdown(events))
    const threshold = options.breakerThreshold ?? DEFAULT_BREAKER_THRESHOLD
    const maxWaiting = options.maxWaiting ?? 1024

    const instances = new Map<string, Managed>()
    const warmPool = new Map<string, Array<Started>>()
    /** One structural change (load, unload, reload) at a time per instance id. */
    const locks = new Map<string, Effect.Semaphore>()
    const semaphoreFor = (id: string) => {
      let semaphore = locks.get(id)
      if (semaphore === undefined) locks.set(id, (semaphore = Effect.unsafeMakeSemaphore(1)))
      return semaphore
    }
    const lockFor = (id: string) => semaphoreFor(id).withPermits(1)

    const emit = (event: ManagerEvent) => void events.unsafeOffer(event)
    /** A counter, not a time: only the order of uses matters to eviction, and two uses never tie. */
    let useClock = 0
    const tick = () => ++useClock
    const scheduling = resolveScheduling(options)
    const trace = yield* Effect.serviceOption(CallTrace)
    const base = (plugin: string, instance: string) => ({ plugin, instance, at: Date.now() })

    const notLoaded = (id: string) => new InstanceNotLoaded({ instance: id, loaded: [...instances.keys()].sort() })
    const find = (id: string): Effect.Effect<Managed, InstanceNotLoaded> =>
      Effect.suspend(() => {
        const managed = instances.get(id)
        return managed === undefined ? Effect.fail(notLoaded(id)) : Effect.succeed(managed)
      })

    const pluginOf = (plugin: string): Effect.Effect<VerifiedPlugin, PluginNotFound> =>
      Effect.suspend(() => {
        const found = verified.get(plugin)
        return found === undefined ? Effect.fail(new PluginNotFound({ plugin, known: [...verified.keys()].sort() })) : Effect.succeed(found)
      })

    /** The config as the worker will get it (see HostConfig.ts). */
    const checkedConfig = (plugin: VerifiedPlugin, config: unknown, strict: boolean) => checkHostConfig(plugin.id, plugin.manifest, config, strict)

    /** A start failure as the caller should see it: a config the plugin's Schema refused is ConfigInvalid. */
    const asLoadFailure =
      (plugin: string) =>
      (error: StartFailure): LoadFailure =>
        error._tag === "PluginInputError"
          ? new ConfigInvalid({
              plugin,
              fieldsInvalid: [...(error.fieldsInvalid ?? ["(root)"])].sort(),
              detail: error.message.replace(/^invalid config: /, ""),
            })
          : namingLock(options.lock)(error)

    // ---- Worker output (OutputLines.ts): a ring per loaded instance, and each reader's own dropping queue ----

    interface OutputReader {
      readonly queue: Queue.Queue<WorkerOutputLine>
      dropped: number
    }
    const readers = new Map<string, Set<OutputReader>>()
    const recent = new Map<string, Array<WorkerOutputLine>>()

    const deliver = (reader: OutputReader, line: WorkerOutputLine) => {
      if (reader.dropped > 0) {
        const notice = { at: line.at, stream: line.stream, pid: line.pid, line: `[plinth] ${reader.dropped} line${reader.dropped === 1 ? "" : "s"} of output dropped: this reader fell behind` }
        if (!reader.queue.unsafeOffer(notice)) return void reader.dropped++
        reader.dropped = 0
      }
      if (!reader.queue.unsafeOffer(line)) reader.dropped++
    }

    /** Lines of a worker go to its instance while it serves one; a warm worker's are not kept. */
    const workerOutput = (owner: { id: string | undefined }) => (line: WorkerOutputLine) => {
      const id = owner.id
      if (id === undefined) return
      let ring = recent.get(id)
      if (ring === undefined) recent.set(id, (ring = []))
      ring.push(line)
      if (ring.length > RECENT_OUTPUT_LINES) ring.shift()
      const subscribed = readers.get(id)
      if (subscribed !== undefined) for (const reader of subscribed) deliver(reader, line)
    }

    const subscribeOutput = (id: string, outputOptions?: OutputOptions) =>
      Effect.acquireRelease(
        Effect.map(Queue.dropping<WorkerOutputLine>(Math.max(1, outputOptions?.buffer ?? 1000)), (queue) => {
          const reader: OutputReader = { queue, dropped: 0 }
          let subscribed = readers.get(id)
          if (subscribed === undefined) readers.set(id, (subscribed = new Set()))
          subscribed.add(reader)
          return reader
        }),
        (reader) =>
          Effect.suspend(() => {
            const subscribed = readers.get(id)
            subscribed?.delete(reader)
            if (subscribed?.size === 0) readers.delete(id)
            return Queue.shutdown(reader.queue)
          }),
      ).pipe(Effect.map((reader): Queue.Dequeue<WorkerOutputLine> => reader.queue))

    // Readers' streams end when the manager closes.
    yield* Effect.addFinalizer(() => Effect.forEach([...readers.values()].flatMap((set) => [...set]), (reader) => Queue.shutdown(reader.queue), { discard: true }))

    const workerEvents = (plugin: string, owner: { id: string | undefined }) => (event: WorkerEvent) => {
      if (owner.id === undefined) return
      if (event._tag === "crashed") emit({ _tag: "crashed", ...base(plugin, owner.id), pid: event.pid, exitCode: event.exitCode, signal: event.signal })
      else emit({ _tag: "restarted", ...base(plugin, owner.id), pid: event.pid })
    }

    /**
     * Starts a worker in a scope of its own under the manager's, once the
     * scheduling policy admits it (`forInstance`, or a warm worker when
     * undefined); a failed start leaves nothing running.
     */
    const startWorker = (plugin: VerifiedPlugin, config: Readonly<Record<string, unknown>>, owner: { id: string | undefined }, forInstance: string | undefined) => {
      const since = tick()
      const candidate = { instance: forInstance ?? warmLabel(plugin.id, since), plugin: plugin.id, expected: costOf(plugin) }
      return admission.admitted(candidate, Effect.gen(function* () {
        const scope = yield* Scope.fork(managerScope, ExecutionStrategy.sequential)
        const instance = yield* startInstance({
          plugin,
          locked: plugin.locked,
          config,
          // The instance it is started for (its InstanceFailed and spans name it); a warm worker keeps "~warm" when taken.
          instanceId: InstanceId.make(forInstance ?? owner.id ?? `${plugin.id}~warm`),
          onWorkerEvent: workerEvents(plugin.id, owner),
          onOutput: workerOutput(owner),
          ...(options.dataRoot !== undefined ? { dataRoot: options.dataRoot } : {}),
          ...(options.isolation !== undefined ? { isolation: options.isolation } : {}),
          ...(options.startTimeout !== undefined ? { startTimeout: options.startTimeout } : {}),
          ...(options.interruptGrace !== undefined ? { interruptGrace: options.interruptGrace } : {}),
          ...(options.restartPolicy !== undefined ? { restartPolicy: options.restartPolicy } : {}),
        }).pipe(
          Scope.extend(scope),
          Effect.provide(startContext),
          Effect.onExit((exit) => (Exit.isFailure(exit) ? Scope.close(scope, Exit.void) : Effect.void)),
          Effect.mapError(asLoadFailure(plugin.id)),
        )
        return { instance, scope, configKey: canonicalJson(config), owner, since } satisfies Started
      }))
    }

    const takeWarm = (plugin: string, configKey: string): Started | undefined => {
      const pool = warmPool.get(plugin)
      const index = pool?.findIndex((started) => started.configKey === configKey) ?? -1
      return index < 0 ? undefined : pool!.splice(index, 1)[0]
    }

    // ---- Scheduling applied and retry after eviction (Admission.ts, RetryAfterEviction.ts) ----

    const warmLabel = (plugin: string, since: number) => `${plugin}~warm~${since}`

    /** Every running worker as the scheduler counts it; calls waiting for a slot make an instance busy too. */
    const runningNow = (): Array<RunningInstance> => [
      ...[...instances.values()].map((m) => ({
        instance: m.id,
        plugin: m.plugin.id,
        costMiB: expectedMiB(costOf(m.plugin)),
        lastUsed: m.lastUsed,
        inFlight: m.inFlight + m.gate.waiting() + (m.hookRunning ? 1 : 0),
      })),
      ...[...warmPool].flatMap(([plugin, pool]) =>
        pool.map((w) => ({ instance: warmLabel(plugin, w.since), plugin, costMiB: expectedMiB(costOf(verified.get(plugin)!)), lastUsed: w.since, inFlight: 0 })),
      ),
    ]

    /**
     * Stops idle instances as `unload` does, announcing each with `evicted`
     * first. One being loaded, reloaded or unloaded (its lock is taken) or
     * busy again is skipped: never waiting for a lock here is what keeps an
     * admission, which holds the decision lock, from waiting on a reload
     * that waits for that decision.
     */
    const evict = (ids: ReadonlyArray<string>, cause: "admission" | "retry", forInstance: string) =>
      Effect.gen(function* () {
        const stopped: Array<string> = []
        for (const id of ids) {
          const managed = instances.get(id)
          if (managed !== undefined) {
            const done = yield* semaphoreFor(id).withPermitsIfAvailable(1)(
              Effect.suspend(() => {
                if (instances.get(id) !== managed || managed.inFlight > 0 || managed.gate.waiting() > 0 || managed.hookRunning) return Effect.succeed(false)
                instances.delete(id)
                recent.delete(id)
                managed.started.owner.id = undefined
                emit({ _tag: "evicted", ...base(managed.plugin.id, id), cause, for: forInstance })
                return Effect.as(Scope.close(managed.started.scope, Exit.void), true)
              }),
            )
            if (Option.getOrElse(done, () => false)) {
              stopped.push(id)
              emit({ _tag: "unloaded", ...base(managed.plugin.id, id) })
            }
            continue
          }
          for (const [plugin, pool] of warmPool) {
            const index = pool.findIndex((w) => warmLabel(plugin, w.since) === id)
            if (index < 0) continue
            const [warm] = pool.splice(index, 1)
            emit({ _tag: "evicted", ...base(plugin, id), cause, for: forInstance })
            yield* Scope.close(warm!.scope, Exit.void)
            stopped.push(id)
          }
        }
        if (stopped.length > 0) admission.changed()
        return stopped
      })

    const admission = makeAdmission(scheduling, { running: runningNow, evict, emit })

    const retryAfterEviction = makeRetryAfterEviction(scheduling, {
      running: runningNow,
      evict,
      emit,
      currentWorker: (id: string) => instances.get(id)?.started,
      freshWorker: (id: string, previous: Started | undefined) =>
        reloadWith(id, undefined, {}, previous).pipe(
          Effect.asVoid,
          // Its saved config was accepted before; what else can refuse a start is a plugin failure or the files having changed.
          Effect.mapError((error): CallFailure =>
            isPluginFailure(error) || error._tag === "InstanceNotLoaded"
              ? error
              : new WorkerStartFailed({ plugin: instances.get(id)?.plugin.id ?? id, reason: `the retry's fresh worker could not start: ${error.message}`, stderrTail: "" }),
          ),
        ),
      trace: (record: CallRecord) => (Option.isSome(trace) ? Effect.ignore(trace.value.record(record)) : Effect.void),
    })

    const describeManaged = (managed: Managed): Effect.Effect<ManagedInstance> =>
      Effect.map(managed.started.instance.pid, (pid) => ({
        id: managed.id,
        plugin: managed.plugin.id,
        config: managed.config,
        enabled: managed.enabled,
        disabledReason: managed.disabledReason,
        pid,
        consecutiveFailures: managed.failures,
        maxConcurrent: managed.maxConcurrent,
        running: managed.gate.active(),
        waiting: managed.gate.waiting(),
      }))

    const isDefault = (managed: Managed) => managed.id === managed.plugin.id

    const resolveId = (plugin: string, loadOptions: LoadInstanceOptions): Effect.Effect<string, InvalidInstanceId> =>
      Effect.suspend(() => {
        if (loadOptions.newInstance === true && loadOptions.instanceId !== undefined) {
          return Effect.fail(new InvalidInstanceId({ value: printableValue(loadOptions.instanceId), reason: "give an instanceId or newInstance: true, not both" }))
        }
        if (loadOptions.newInstance === true) {
          let id: string
          do id = freshInstanceId(plugin, randomBytes(3))
          while (instances.has(id) || locks.has(id))
          return Effect.succeed(id)
        }
        if (loadOptions.instanceId === undefined) return Effect.succeed(plugin)
        const problem = instanceIdProblem(loadOptions.instanceId)
        return problem === undefined
          ? Effect.succeed(loadOptions.instanceId as string)
          : Effect.fail(new InvalidInstanceId({ value: printableValue(loadOptions.instanceId), reason: problem }))
      })

    const load = (pluginId: string, loadOptions: LoadInstanceOptions = {}): Effect.Effect<ManagedInstance, LoadFailure> =>
      Effect.gen(function* () {
        // Everything about the request is checked before any process starts.
        const id = yield* resolveId(pluginId, loadOptions)
        yield* Effect.annotateCurrentSpan("plinth.instance", id)
        const plugin = yield* pluginOf(pluginId)
        return yield* lockFor(id)(
          Effect.gen(function* () {
            const existing = instances.get(id)
            if (existing !== undefined) return yield* describeManaged(existing)
            const remembered = id === plugin.id ? Option.getOrUndefined(yield* configs.get(plugin.id)) : undefined
            const config = yield* checkedConfig(plugin, loadOptions.config ?? remembered?.config ?? {}, loadOptions.strict ?? true)
            const owner = { id: undefined as string | undefined }
            const warm = takeWarm(plugin.id, canonicalJson(config))
            const started = warm ?? (yield* startWorker(plugin, config, owner, id))
            started.owner.id = id
            const enabled = remembered?.enabled ?? true
            const maxConcurrent = loadOptions.maxConcurrent ?? plugin.manifest.resources?.maxConcurrent ?? options.maxConcurrent ?? DEFAULT_MAX_CONCURRENT
            const managed: Managed = {
              id,
              plugin,
              config,
              started,
              enabled,
              disabledReason: undefined,
              applied: enabled,
              hookRunning: false,
              inFlight: 0,
              failures: 0,
              lastUsed: tick(),
              maxConcurrent,
              gate: makeFairGate(maxConcurrent, maxWaiting),
            }
            instances.set(id, managed)
            if (id === plugin.id && loadOptions.config !== undefined) yield* configs.save(plugin.id, { config, enabled })
            const info = yield* describeManaged(managed)
            emit({ _tag: "loaded", ...base(plugin.id, id), pid: info.pid, warm: warm !== undefined })
            return info
          }),
        )
      }).pipe(Effect.withSpan("plinth.load", { attributes: { "plinth.plugin": pluginId }, captureStackTrace: false }))

    const unload = (id: string) =>
      lockFor(id)(
        Effect.gen(function* () {
          const managed = yield* find(id)
          instances.delete(id)
          recent.delete(id)
          managed.started.owner.id = undefined
          yield* Scope.close(managed.started.scope, Exit.void)
          admission.changed()
          emit({ _tag: "unloaded", ...base(managed.plugin.id, id) })
        }),
      )

    /** The new worker starts before the old one stops: a refused config leaves the instance as it was. */
    const reloadWith = (id: string, config: unknown | undefined, configOptions: ConfigOptions = {}, unlessReplaced?: Started) =>
      lockFor(id)(
        Effect.gen(function* () {
          const managed = yield* find(id)
          // A retry's reload: another caller's retry already gave it a fresh worker.
          if (unlessReplaced !== undefined && managed.started !== unlessReplaced) return yield* describeManaged(managed)
          const next = config === undefined ? managed.config : yield* checkedConfig(managed.plugin, config, configOptions.strict ?? true)
          const owner = { id: undefined as string | undefined }
          const started = yield* startWorker(managed.plugin, next, owner, id)
          const previous = managed.started
          previous.owner.id = undefined
          owner.id = id
          managed.started = started
          // A fresh worker has run `setup` only: no hook is owed to it.
          managed.applied = managed.enabled
          const changed = canonicalJson(next) !== canonicalJson(managed.config)
          managed.config = next
          yield* Scope.close(previous.scope, Exit.void)
          if (changed) {
            if (isDefault(managed)) yield* configs.save(managed.plugin.id, { config: next, enabled: managed.enabled })
            emit({ _tag: "configChanged", ...base(managed.plugin.id, id) })
          }
          return yield* describeManaged(managed)
        }),
      )

    /**
     * Brings the worker's hooks up to the instance's enabled state once nothing
     * is in flight: one hook per change, none when a change was undone before
     * it could run.
     */
    const settleHooks = (managed: Managed): Effect.Effect<void, PluginFailure> =>
      Effect.suspend(() => {
        if (managed.inFlight > 0 || managed.hookRunning || managed.applied === managed.enabled) return Effect.void
        if (instances.get(managed.id) !== managed) return Effect.void
        managed.hookRunning = true
        managed.applied = managed.enabled
        return managed.started.instance.lifecycle(managed.enabled ? "enable" : "disable").pipe(
          Effect.ensuring(
            Effect.suspend(() => {
              managed.hookRunning = false
              return Effect.ignore(settleHooks(managed))
            }),
          ),
        )
      })

    const setEnabled = (managed: Managed, enabled: boolean, reason: string | undefined, persist: boolean) =>
      Effect.gen(function* () {
        if (managed.enabled !== enabled) {
          managed.enabled = enabled
          managed.disabledReason = enabled ? undefined : reason
          if (enabled) managed.failures = 0
          emit(enabled ? { _tag: "enabled", ...base(managed.plugin.id, managed.id) } : { _tag: "disabled", ...base(managed.plugin.id, managed.id), reason })
          if (persist && isDefault(managed)) yield* configs.save(managed.plugin.id, { config: managed.config, enabled })
        }
        yield* settleHooks(managed)
      })

    const enable = (id: string) => Effect.flatMap(find(id), (managed) => setEnabled(managed, true, undefined, true))
    const disable = (id: string) => Effect.flatMap(find(id), (managed) => setEnabled(managed, false, undefined, true))
    const reset = (id: string) =>
      Effect.flatMap(find(id), (managed) => {
        managed.failures = 0
        return setEnabled(managed, true, undefined, true)
      })

    const queueFull = (managed: Managed) => () =>
      new PluginTransientError({
        message: `instance '${managed.id}' already has ${maxWaiting} calls waiting for one of its ${managed.maxConcurrent} slots; try again later`,
        retryAfterSeconds: 1,
      })

    /** After a call: the breaker counts it, and a hook owed since the call began runs now, before the caller hears back. */
    const afterCall = (managed: Managed, exit: Exit.Exit<unknown, PluginFailure>): Effect.Effect<void> => {
        managed.inFlight--
        managed.lastUsed = tick()
        admission.changed()
        if (Exit.isSuccess(exit)) {
          // A success resets the breaker's count; with none counted there is nothing to step.
          if (managed.failures > 0 && instances.get(managed.id) === managed) managed.failures = 0
          return managed.applied === managed.enabled ? Effect.void : Effect.ignore(settleHooks(managed))
        }
        const failure = failureOf(exit.cause)
        // An interrupted call (the caller gave up) says nothing about the instance: it does not count.
        const outcome = failure !== undefined ? { ok: false as const, category: categoryOf(failure), failure } : undefined
        if (outcome !== undefined && instances.get(managed.id) === managed) {
          const step = breakerStep(managed.failures, outcome, threshold)
          managed.failures = step.failures
          if (step.opens && managed.enabled) {
            const last = `${outcome.failure._tag}: ${outcome.failure.message}`
            const reason = `the circuit breaker opened after ${step.failures} consecutive failures; the last: ${last}`
            emit({ _tag: "breakerOpened", ...base(managed.plugin.id, managed.id), failures: step.failures, lastFailure: last })
            return Effect.ignore(setEnabled(managed, false, reason, false))
          }
        }
        return managed.applied === managed.enabled ? Effect.void : Effect.ignore(settleHooks(managed))
      }

    const disabledError = (managed: Managed) =>
      new PluginDisabled({ plugin: managed.plugin.id, instance: managed.id, ...(managed.disabledReason !== undefined ? { reason: managed.disabledReason } : {}) })

    /** Ends a call: its sample is queued, the breaker counts it, owed hooks run; then the caller gets its exit. */
    const finishCall = <A>(managed: Managed, probe: ReturnType<typeof usage.begin>, exit: Exit.Exit<A, PluginFailure>): Effect.Effect<A, PluginFailure> => {
      const recorded = probe.end(exit)
      const after = afterCall(managed, exit)
      // Usually only the sample is left to queue: one step, not three (every step is a share of a call's host CPU).
      if (after === Effect.void) return recorded === Effect.void ? exit : Effect.zipRight(recorded, exit)
      return Effect.zipRight(Effect.zipRight(recorded, after), exit)
    }

    /**
     * Runs a call under the instance's guards: enabled (checked again after
     * waiting), the cap, the breaker; its cost is measured (Usage.ts). With a
     * slot free and nobody waiting, the slot is taken at once, without the
     * gate's wait machinery: every combinator here is a share of a call's
     * host CPU (bench/manager.mjs).
     */
    const guarded = <A>(
      managed: Managed,
      call: (timeoutLeft: number | undefined, onUsage: (usage: CallUsage) => void) => Effect.Effect<A, PluginFailure>,
      action: string,
      timeout: Duration.DurationInput | undefined,
      onUsage: ((usage: CallUsage) => void) | undefined,
    ): Effect.Effect<A, CallFailure> =>
      Effect.uninterruptibleMask((restore) => {
        if (!managed.enabled) return Effect.fail(disabledError(managed))
        const timeoutMillis = timeout === undefined ? undefined : Duration.toMillis(timeout)
        if (managed.gate.tryTake()) {
          managed.inFlight++
          managed.lastUsed = tick()
          const probe = usage.begin(managed, onUsage)
          // One frame for both outcomes (not `exit` then `flatMap`): the slot is released, then the call is ended.
          return Effect.matchCauseEffect(restore(call(timeoutMillis, probe.onUsage)), {
            onFailure: (cause) => {
              managed.gate.release()
              return finishCall(managed, probe, Exit.failCause(cause))
            },
            onSuccess: (value) => {
              managed.gate.release()
              return finishCall(managed, probe, Exit.succeed(value))
            },
          })
        }
        return restore(waitForSlot(managed, call, action, timeoutMillis, onUsage))
      })

    /** A call that waits for a slot, in FIFO order; the deadline covers the wait too. */
    const waitForSlot = <A>(
      managed: Managed,
      call: (timeoutLeft: number | undefined, onUsage: (usage: CallUsage) => void) => Effect.Effect<A, PluginFailure>,
      action: string,
      timeoutMillis: number | undefined,
      onUsage: ((usage: CallUsage) => void) | undefined,
    ): Effect.Effect<A, CallFailure> => {
      const started = Date.now()
      const body = Effect.uninterruptibleMask((restore): Effect.Effect<A, CallFailure> => {
        if (!managed.enabled) return Effect.fail(disabledError(managed))
        const left = timeoutMillis === undefined ? undefined : Math.max(0, timeoutMillis - (Date.now() - started))
        managed.inFlight++
        managed.lastUsed = tick()
        const probe = usage.begin(managed, onUsage)
        return Effect.flatMap(Effect.exit(restore(call(left, probe.onUsage))), (exit) => finishCall(managed, probe, exit))
      })
      const gated = managed.gate.run(body, queueFull(managed))
      return timeoutMillis === undefined || managed.gate.active() < managed.maxConcurrent
        ? gated
        : Effect.timeoutFail(gated, {
            duration: Duration.millis(timeoutMillis),
            onTimeout: () => new InvokeTimeout({ plugin: managed.plugin.id, action, timeoutMillis }),
          })
    }

    /** One attempt of a call, on the instance's worker as it is when the attempt starts (a retry's is a fresh one). */
    const attemptCall = (id: string, action: string, input: unknown, invokeOptions?: InvokeOptions): Effect.Effect<unknown, CallFailure> =>
      Effect.suspend(() => {
        const managed = instances.get(id)
        if (managed === undefined) return Effect.fail(notLoaded(id))
        return callOn(managed, action, input, invokeOptions)
      })

    const callOn = (managed: Managed, action: string, input: unknown, invokeOptions: InvokeOptions | undefined): Effect.Effect<unknown, CallFailure> =>
      guarded(
        managed,
        (left, onUsage) => {
          if (invokeOptions === undefined) return managed.started.instance.invoke(action, input, { onUsage })
          invokeOptions.onStarted?.()
          return managed.started.instance.invoke(
            action,
            input,
            left === undefined ? { ...invokeOptions, onUsage } : { ...invokeOptions, onUsage, timeout: Duration.millis(left) },
          )
        },
        action,
        invokeOptions?.timeout,
        invokeOptions?.onUsage,
      )

    /** A call that runs short of memory is retried on a fresh worker after eviction (RetryAfterEviction.ts); each attempt has the whole timeout. */
    const execute = (id: string, action: string, input: unknown, invokeOptions?: InvokeOptions): Effect.Effect<unknown, CallFailure> =>
      // One fiber-runtime read both finds the instance and tells whether a tracer is installed (no more steps than a lookup).
      Effect.withFiberRuntime((fiber) => {
        const managed = instances.get(id)
        if (managed === undefined) return Effect.fail(notLoaded(id))
        const target = { instance: id, plugin: managed.plugin.id, action, onRetry: invokeOptions?.onRetry }
        // Untraced, the first attempt runs on the instance just found, without a step of its own to find it again.
        if (!tracerInstalled(fiber))
          return retryAfterEviction.runNow(target, callOn(managed, action, input, invokeOptions), attemptCall(id, action, input, invokeOptions))
        // Traced: one span for the whole call, its attempts (retries after eviction) counted on it.
        let attempt = 0
        const counted = Effect.suspend(() => Effect.zipRight(Effect.annotateCurrentSpan("plinth.attempt", ++attempt), attemptCall(id, action, input, invokeOptions)))
        return Effect.withSpan(retryAfterEviction.run(target, counted), "plinth.call", callSpan(managed.plugin.id, id, action))
      })

    /**
     * A stream holds its slot until it ends; its outcome counts for the breaker like a call's. One that runs short of
     * memory before it has delivered anything is retried after eviction, as a call is (RetryAfterEviction.runStream).
     */
    const stream = (id: string, action: string, input: unknown, streamOptions?: StreamOptions): Stream.Stream<unknown, CallFailure> =>
      Stream.unwrap(
        Effect.withFiberRuntime((fiber) => {
          const managed = instances.get(id)
          if (managed === undefined) return Effect.succeed(Stream.fail(notLoaded(id)))
          const target = { instance: id, plugin: managed.plugin.id, action }
          const call = retryAfterEviction.runStream(target, streamCall(id, action, input, streamOptions))
          if (!tracerInstalled(fiber)) return Effect.succeed(call)
          return Effect.succeed(Stream.withSpan(call, "plinth.call", callSpan(managed.plugin.id, id, action)))
        }),
      )

    const streamCall = (id: string, action: string, input: unknown, streamOptions?: StreamOptions): Stream.Stream<unknown, CallFailure> =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          const managed = yield* find(id)
          // One item at a time: the worker's own credit window still paces the plugin.
          const queue = yield* Queue.bounded<Take.Take<unknown, CallFailure>>(1)
          const run = guarded(
            managed,
            (left, onUsage) =>
              Stream.runForEach(
                managed.started.instance.stream(action, input, { ...streamOptions, onUsage, ...(left === undefined ? {} : { timeout: Duration.millis(left) }) }),
                (item) => Queue.offer(queue, Take.of(item)),
              ),
            action,
            streamOptions?.timeout,
            streamOptions?.onUsage,
          )
          yield* Effect.forkScoped(
            Effect.flatMap(Effect.exit(run), (exit) => Queue.offer(queue, Exit.isSuccess(exit) ? Take.end : Take.failCause(exit.cause))),
          )
          return Stream.flattenTake(Stream.fromQueue(queue))
        }),
      )

    const prefetch = (pluginId: string, count: number) =>
      Effect.gen(function* () {
        const plugin = yield* pluginOf(pluginId)
        const remembered = Option.getOrUndefined(yield* configs.get(plugin.id))
        const config = yield* checkedConfig(plugin, remembered?.config ?? {}, true)
        const started = yield* Effect.forEach(
          Array.from({ length: Math.max(0, Math.floor(count)) }),
          () => startWorker(plugin, config, { id: undefined }, undefined),
          { concurrency: 2 },
        )
        const pool = warmPool.get(plugin.id) ?? []
        pool.push(...started)
        warmPool.set(plugin.id, pool)
      })

    const bind = (pluginId: string, defaultConfig?: unknown, bindOptions?: { readonly instanceId?: string }): BoundPlugin => {
      const instanceId = bindOptions?.instanceId ?? pluginId
      const ensure = Effect.suspend(() => {
        const managed = instances.get(instanceId)
        return managed !== undefined
          ? describeManaged(managed)
          : load(pluginId, { instanceId, ...(defaultConfig !== undefined ? { config: defaultConfig } : {}) })
      })
      return {
        plugin: pluginId,
        instanceId,
        load: ensure,
        execute: (action, input, invokeOptions) => Effect.zipRight(ensure, execute(instanceId, action, input, invokeOptions)),
        stream: (action, input, streamOptions) => Stream.unwrap(Effect.as(ensure, stream(instanceId, action, input, streamOptions))),
      }
    }

    return PluginManager.of({
      plugins: [...verified.keys()].sort(),
      verifiedDigests: [...verified.keys()].sort().map((plugin) => ({ plugin, digest: verified.get(plugin)!.locked.digest })),
      load,
      unload,
      reload: (id, config, configOptions) => reloadWith(id, config, configOptions),
      updateConfig: (id, config, configOptions) => reloadWith(id, config ?? {}, configOptions),
      list: Effect.suspend(() => Effect.forEach([...instances.values()].sort((a, b) => (a.id < b.id ? -1 : 1)), describeManaged)),
      // Found and described in one step (not a lookup step, then a describe step): the job queue asks twice per job.
      get: (id) =>
        Effect.suspend(() => {
          const managed = instances.get(id)
          return managed === undefined ? Effect.fail(notLoaded(id)) : describeManaged(managed)
        }),
      actions: (id) => Effect.map(find(id), (managed) => Object.keys(managed.plugin.manifest.actions ?? {}).sort()),
      enable,
      disable,
      reset,
      execute,
      stream,
      prefetch,
      warm: (plugin) => Effect.sync(() => warmPool.get(plugin)?.length ?? 0),
      events: Stream.fromPubSub(events),
      subscribe: PubSub.subscribe(events),
      bind,
      stats: (id) =>
        Effect.flatMap(find(id), (managed) =>
          Effect.gen(function* () {
            const recorded = yield* usage.stats(id, managed, yield* managed.started.instance.usage)
            // Measured on demand, from outside the worker: a plugin busy in a long call is measured all the same.
            const now = yield* Effect.flatMap(managed.started.instance.pid, sampleProcessEffect)
            return Option.isSome(now) ? { ...recorded, now: now.value } : recorded
          }),
        ),
      output: (id, outputOptions) => Stream.unwrapScoped(Effect.map(subscribeOutput(id, outputOptions), (queue) => Stream.fromQueue(queue))),
      subscribeOutput,
      recentOutput: (id, n) =>
        Effect.sync(() => {
          const ring = recent.get(id) ?? []
          return ring.slice(Math.max(0, ring.length - Math.max(0, Math.floor(n ?? RECENT_OUTPUT_LINES))))
        }),
      snapshot: (id) =>
        Effect.suspend(() => {
          const managed = instances.get(id)
          return managed === undefined ? Effect.succeedNone : Effect.flatMap(managed.started.instance.pid, sampleProcessEffect)
        }),
    })
  })

/** The typed failure of a call's cause, if it failed (not if it was interrupted or died). */
const failureOf = <E>(cause: Cause.Cause<E>): E | undefined => Option.getOrUndefined(Cause.failureOption(cause))

/**
 * Verifies every plugin under `root` against `lock`, then provides a
 * PluginManager that starts workers only when asked. Closing the layer stops
 * every worker it started. It records each call's cost in the EmpiricalStore
 * it is given (EmpiricalStoreMemory when nothing should outlive the process).
 */
export const PluginManagerLive = (options: PluginManagerOptions) => Layer.scoped(PluginManager, makePluginManager(options))
