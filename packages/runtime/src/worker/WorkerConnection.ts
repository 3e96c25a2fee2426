import { Deferred, Duration, Effect, Either, Exit, Scope, Stream } from "effect"
import {
  ProtocolError,
  WorkerExited,
  WorkerKilled,
  WorkerStartFailed,
  type PluginDeclaration,
  type PluginFailure,
} from "@plinth/domain"
import { ProcessSpawner, type ChildProcessHandle, type ProcessExit, type SpawnRequest } from "./ProcessSpawner.js"
import { decodeWorkerMessage, encodeHostMessage, Interrupt, Invoke, Load, Shutdown, type WorkerMessage } from "./Protocol.js"

/*
 * One worker process seen from the host: the start-up handshake, calls
 * correlated by id, and the rule that when the process ends every call in
 * flight on it fails with a typed error.
 */

export interface ProgressReport {
  readonly fraction: number
  readonly message?: string | undefined
}

type CallEvent = WorkerMessage | { readonly _tag: "ProcessEnded"; readonly failure: PluginFailure }
type CallListener = (event: CallEvent) => void

export interface WorkerConnection {
  readonly pid: number | undefined
  readonly declaration: PluginDeclaration
  /** Starts a unary call; the Deferred settles with its outcome. */
  readonly begin: (
    action: string,
    input: unknown,
    onProgress?: (report: ProgressReport) => void,
  ) => Effect.Effect<{ readonly id: number; readonly result: Deferred.Deferred<unknown, PluginFailure> }>
  readonly stream: (action: string, input: unknown, onProgress?: (report: ProgressReport) => void) => Stream.Stream<unknown, PluginFailure>
  /**
   * Asks the worker to interrupt a call and returns at once; if the worker has
   * not stopped it within the grace period, the process is killed.
   */
  readonly cancel: (id: number) => Effect.Effect<void>
  /** Waits until every cancelled call has stopped (or the process was killed for it). */
  readonly cancellationsSettled: Effect.Effect<void>
  readonly hasExited: Effect.Effect<boolean>
  /** True while the process runs and no cancelled call is still winding down. */
  readonly isIdleAndAlive: () => boolean
  readonly exited: Effect.Effect<ProcessExit>
  /** Kills the process on the host's own initiative; calls in flight fail as WorkerExited with this reason. */
  readonly kill: (reason: string) => Effect.Effect<ProcessExit>
}

export interface WorkerStartOptions {
  readonly plugin: string
  readonly entry: string
  readonly files: Load["files"]
  readonly config: unknown
  readonly env: ReadonlyArray<string>
  readonly dataDir: string | undefined
  readonly spawn: SpawnRequest
  readonly startTimeout: Duration.DurationInput
  readonly interruptGrace: Duration.DurationInput
}

const exitFailure = (plugin: string, exit: ProcessExit, killedByHost: string | undefined): PluginFailure =>
  killedByHost !== undefined
    ? new WorkerExited({ plugin, exitCode: exit.exitCode, signal: exit.signal, detail: killedByHost })
    : exit.signal === "SIGKILL"
      ? new WorkerKilled({ plugin, exitCode: exit.exitCode, signal: exit.signal })
      : new WorkerExited({ plugin, exitCode: exit.exitCode, signal: exit.signal, detail: "the process ended unexpectedly" })

/** Starts a worker and waits, up to the deadline, until it has loaded the plugin. Closing the scope stops it. */
export const startWorker = (options: WorkerStartOptions): Effect.Effect<WorkerConnection, WorkerStartFailed, Scope.Scope | ProcessSpawner> =>
  Effect.gen(function* () {
    const spawner = yield* ProcessSpawner
    const child: ChildProcessHandle = yield* Effect.acquireRelease(spawner.spawn(options.spawn), (child) =>
      stopGracefully(child),
    )
    const exited = yield* Deferred.make<ProcessExit>()
    const handshake = yield* Deferred.make<PluginDeclaration, WorkerStartFailed>()
    const calls = new Map<number, CallListener>()
    const cancellations = new Set<Deferred.Deferred<void>>()
    let killedByHost: string | undefined
    let nextId = 0
    let ready = false
    let exitedFlag = false

    const startFailed = (reason: string, exit?: ProcessExit) =>
      new WorkerStartFailed({
        plugin: options.plugin,
        reason,
        stderrTail: child.stderrTail(),
        ...(exit !== undefined ? { exitCode: exit.exitCode, signal: exit.signal } : {}),
      })

    const breakProtocol = (detail: string) => {
      const failure = new ProtocolError({ detail })
      for (const [id, listener] of calls) {
        calls.delete(id)
        listener({ _tag: "ProcessEnded", failure })
      }
      killedByHost = `the worker broke the protocol: ${detail}`
      child.kill("SIGKILL")
    }

    child.onMessage((raw) => {
      const decoded = decodeWorkerMessage(raw)
      if (Either.isLeft(decoded)) return breakProtocol(decoded.left.detail)
      const message = decoded.right
      switch (message._tag) {
        case "Ready":
          ready = true
          child.send(
            encodeHostMessage(
              new Load({
                plugin: options.plugin,
                entry: options.entry,
                files: options.files,
                config: options.config,
                env: options.env,
                dataDir: options.dataDir ?? null,
              }),
            ),
          )
          return
        case "Loaded":
          return void Deferred.unsafeDone(handshake, Exit.succeed(message.declaration))
        case "LoadFailed":
          return void Deferred.unsafeDone(
            handshake,
            Exit.fail(startFailed(`the plugin failed to load: ${message.error._tag}: ${message.error.message}`)),
          )
        case "Rejected":
          return breakProtocol(`the worker rejected a host message: ${message.detail}`)
        default:
          calls.get(message.id)?.(message)
      }
    })
    child.onExit((exit) => {
      exitedFlag = true
      Deferred.unsafeDone(exited, Exit.succeed(exit))
      Deferred.unsafeDone(
        handshake,
        Exit.fail(startFailed(ready ? "the worker exited while loading the plugin" : "the worker exited before it was ready", exit)),
      )
      const failure = exitFailure(options.plugin, exit, killedByHost)
      for (const [id, listener] of calls) {
        calls.delete(id)
        listener({ _tag: "ProcessEnded", failure })
      }
    })

    const declaration = yield* Deferred.await(handshake).pipe(
      Effect.timeoutFail({
        duration: options.startTimeout,
        onTimeout: () => startFailed(`not ready within ${Duration.format(options.startTimeout)}`),
      }),
      Effect.tapError(() => Effect.sync(() => child.kill("SIGKILL"))),
    )

    const register = (listener: CallListener): number => {
      const id = nextId++
      calls.set(id, listener)
      return id
    }

    const hasExited = Deferred.isDone(exited)

    const kill = (reason: string) =>
      Effect.suspend(() => {
        killedByHost ??= reason
        child.kill("SIGKILL")
        return Deferred.await(exited)
      })

    const cancel = (id: number) =>
      Effect.gen(function* () {
        const listener = calls.get(id)
        if (listener === undefined) return
        const settled = yield* Deferred.make<void>()
        cancellations.add(settled)
        calls.set(id, (event) => {
          if (event._tag === "Progress" || event._tag === "Chunk") return
          calls.delete(id)
          Deferred.unsafeDone(settled, Exit.void)
        })
        child.onExit(() => Deferred.unsafeDone(settled, Exit.void))
        child.send(encodeHostMessage(new Interrupt({ id })))
        yield* Deferred.await(settled).pipe(
          Effect.timeout(options.interruptGrace),
          Effect.catchTag("TimeoutException", () => kill("a cancelled call did not stop within the grace period")),
          Effect.ensuring(Effect.sync(() => cancellations.delete(settled))),
          Effect.forkDaemon,
        )
      })

    const progressOf = (onProgress: ((report: ProgressReport) => void) | undefined, message: WorkerMessage) => {
      if (message._tag === "Progress" && onProgress !== undefined) onProgress({ fraction: message.fraction, message: message.message })
    }

    return {
      pid: child.pid,
      declaration,
      begin: (action, input, onProgress) =>
        Effect.gen(function* () {
          const result = yield* Deferred.make<unknown, PluginFailure>()
          if (yield* hasExited) {
            const exit = yield* Deferred.await(exited)
            yield* Deferred.fail(result, exitFailure(options.plugin, exit, killedByHost))
            return { id: -1, result }
          }
          const id = register((event) => {
            switch (event._tag) {
              case "Progress":
                return progressOf(onProgress, event)
              case "Success":
                calls.delete(id)
                return void Deferred.unsafeDone(result, Exit.succeed(event.value))
              case "Failure":
                calls.delete(id)
                return void Deferred.unsafeDone(result, Exit.fail(event.error))
              case "ProcessEnded":
                return void Deferred.unsafeDone(result, Exit.fail(event.failure))
              default:
                calls.delete(id)
                return void Deferred.unsafeDone(
                  result,
                  Exit.fail(new ProtocolError({ detail: `unexpected ${event._tag} for a unary call` })),
                )
            }
          })
          child.send(encodeHostMessage(new Invoke({ id, action, input, streaming: false })))
          return { id, result }
        }),
      stream: (action, input, onProgress) =>
        Stream.asyncPush<unknown, PluginFailure>((emit) =>
          Effect.acquireRelease(
            Effect.gen(function* () {
              if (yield* hasExited) {
                const exit = yield* Deferred.await(exited)
                emit.fail(exitFailure(options.plugin, exit, killedByHost))
                return -1
              }
              const id = register((event) => {
                switch (event._tag) {
                  case "Progress":
                    return progressOf(onProgress, event)
                  case "Chunk":
                    return void emit.single(event.value)
                  case "End":
                    calls.delete(id)
                    return void emit.end()
                  case "Failure":
                    calls.delete(id)
                    return void emit.fail(event.error)
                  case "ProcessEnded":
                    return void emit.fail(event.failure)
                  default:
                    calls.delete(id)
                    return void emit.fail(new ProtocolError({ detail: `unexpected ${event._tag} for a streaming call` }))
                }
              })
              child.send(encodeHostMessage(new Invoke({ id, action, input, streaming: true })))
              return id
            }),
            (id) => (id >= 0 ? cancel(id) : Effect.void),
          ),
        ),
      cancel,
      cancellationsSettled: Effect.suspend(() => Effect.forEach([...cancellations], Deferred.await, { discard: true })),
      hasExited,
      isIdleAndAlive: () => !exitedFlag && cancellations.size === 0,
      exited: Deferred.await(exited),
      kill,
    } satisfies WorkerConnection
  })

/** Asks the worker to tear down and exit; kills it if it has not within a second. */
const stopGracefully = (child: ChildProcessHandle) =>
  Effect.async<void>((resume) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 1000)
    child.onExit(() => {
      clearTimeout(timer)
      resume(Effect.void)
    })
    child.send(encodeHostMessage(new Shutdown()))
  })
