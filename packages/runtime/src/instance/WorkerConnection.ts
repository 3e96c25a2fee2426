import { Deferred, Duration, Effect, Either, Exit, FiberId, Option, Scope, Stream } from "effect"
import {
  ProtocolError,
  WorkerStartFailed,
  type PluginDeclaration,
  type PluginFailure,
} from "@plinth/domain"
import { workerExitFailure } from "./WorkerExit.js"
import { ProcessSpawner, type ChildProcessHandle, type ProcessExit, type SpawnRequest } from "./ProcessSpawner.js"
import { decodeWorkerMessage, encodeHostMessage, framedMessages, makeOutbox, type Interrupt, type Invoke, type Load, type Shutdown, type WorkerMessage } from "../wire/Protocol.js"

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

export interface CallOptions {
  readonly onProgress?: ((report: ProgressReport) => void) | undefined
  /** Fails the call with `onTimeout()` after this long and cancels it (interrupt, grace period, kill). */
  readonly timeoutMillis?: number | undefined
  readonly onTimeout?: (() => PluginFailure) | undefined
}

export interface StreamCallOptions extends CallOptions {
  /** Like `timeoutMillis`, but restarted by every chunk and progress report. */
  readonly idleTimeoutMillis?: number | undefined
  readonly onIdleTimeout?: (() => PluginFailure) | undefined
}

export interface WorkerConnection {
  readonly pid: number | undefined
  readonly declaration: PluginDeclaration
  /**
   * A unary call. Interrupting it (or its timeout) cancels it in the worker:
   * the caller goes on at once, the worker is killed if the call has not
   * stopped within the grace period.
   */
  readonly call: (action: string, input: unknown, options?: CallOptions) => Effect.Effect<unknown, PluginFailure>
  readonly stream: (action: string, input: unknown, options?: StreamCallOptions) => Stream.Stream<unknown, PluginFailure>
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

const exitFailure = (plugin: string, exit: ProcessExit, killedByHost: string | undefined, stderrTail: string): PluginFailure =>
  workerExitFailure({ plugin, exit, killedByHost, stderrTail })

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
    let exitValue = Option.none<ProcessExit>()
    const graceMillis = Duration.toMillis(options.interruptGrace)

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

    const send = makeOutbox(child.send)
    child.onMessage((frame) => {
      for (const raw of framedMessages(frame)) receive(raw)
    })
    const receive = (raw: unknown): void => {
      const decoded = decodeWorkerMessage(raw)
      if (Either.isLeft(decoded)) return breakProtocol(decoded.left.detail)
      const message = decoded.right
      switch (message._tag) {
        case "Ready":
          ready = true
          send(
            encodeHostMessage({
              _tag: "Load",
              plugin: options.plugin,
              entry: options.entry,
              files: options.files,
              config: options.config,
              env: options.env,
              dataDir: options.dataDir ?? null,
            }),
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
    }
    child.onExit((exit) => {
      exitedFlag = true
      exitValue = Option.some(exit)
      Deferred.unsafeDone(exited, Exit.succeed(exit))
      Deferred.unsafeDone(
        handshake,
        Exit.fail(startFailed(ready ? "the worker exited while loading the plugin" : "the worker exited before it was ready", exit)),
      )
      const failure = exitFailure(options.plugin, exit, killedByHost, child.stderrTail())
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

    /**
     * Plain callbacks, no fiber: sends Interrupt, waits for the call to report
     * back, and kills the process when the grace period runs out first.
     */
    const startCancel = (id: number): void => {
      if (!calls.has(id) || exitedFlag) return
      const settled = Deferred.unsafeMake<void>(FiberId.none)
      cancellations.add(settled)
      let timer: ReturnType<typeof setTimeout> | undefined
      const done = () => {
        if (timer !== undefined) clearTimeout(timer)
        cancellations.delete(settled)
        Deferred.unsafeDone(settled, Exit.void)
      }
      calls.set(id, (event) => {
        if (event._tag === "Progress" || event._tag === "Chunk") return
        calls.delete(id)
        done()
      })
      child.onExit(done)
      timer = setTimeout(() => {
        killedByHost ??= "a cancelled call did not stop within the grace period"
        child.kill("SIGKILL")
      }, graceMillis)
      send({ _tag: "Interrupt", id } satisfies Interrupt)
    }

    const cancel = (id: number) => Effect.sync(() => startCancel(id))

    const progressOf = (onProgress: ((report: ProgressReport) => void) | undefined, message: WorkerMessage) => {
      if (message._tag === "Progress" && onProgress !== undefined) onProgress({ fraction: message.fraction, message: message.message })
    }

    // The call path is plain callbacks around one Effect.async: no fiber,
    // Deferred or Schema encoding per call beyond the caller's own fiber
    // (measured: this is what brings a round trip near the raw IPC cost).
    const call = (action: string, input: unknown, callOptions?: CallOptions): Effect.Effect<unknown, PluginFailure> =>
      Effect.async<unknown, PluginFailure>((resume) => {
        if (exitedFlag) {
          resume(Effect.fail(exitFailure(options.plugin, Option.getOrThrow(exitValue), killedByHost, child.stderrTail())))
          return
        }
        let timer: ReturnType<typeof setTimeout> | undefined
        const onProgress = callOptions?.onProgress
        const id = register((event) => {
          switch (event._tag) {
            case "Progress":
              return progressOf(onProgress, event)
            case "Success":
              calls.delete(id)
              if (timer !== undefined) clearTimeout(timer)
              return resume(Effect.succeed(event.value))
            case "Failure":
              calls.delete(id)
              if (timer !== undefined) clearTimeout(timer)
              return resume(Effect.fail(event.error))
            case "ProcessEnded":
              if (timer !== undefined) clearTimeout(timer)
              return resume(Effect.fail(event.failure))
            default:
              calls.delete(id)
              if (timer !== undefined) clearTimeout(timer)
              return resume(Effect.fail(new ProtocolError({ detail: `unexpected ${event._tag} for a unary call` })))
          }
        })
        send({ _tag: "Invoke", id, action, input, streaming: false } satisfies Invoke)
        const timeoutMillis = callOptions?.timeoutMillis
        if (timeoutMillis !== undefined) {
          // The caller learns of the timeout at once; stopping the call (or its worker) goes on in the background.
          timer = setTimeout(() => {
            if (!calls.has(id)) return
            startCancel(id)
            resume(Effect.fail(callOptions!.onTimeout!()))
          }, timeoutMillis)
        }
        return Effect.sync(() => {
          if (timer !== undefined) clearTimeout(timer)
          startCancel(id)
        })
      })

    const stream = (action: string, input: unknown, streamOptions?: StreamCallOptions): Stream.Stream<unknown, PluginFailure> =>
      Stream.asyncPush<unknown, PluginFailure>((emit) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            if (exitedFlag) {
              emit.fail(exitFailure(options.plugin, Option.getOrThrow(exitValue), killedByHost, child.stderrTail()))
              return { id: -1, stop: () => {} }
            }
            let overall: ReturnType<typeof setTimeout> | undefined
            let idle: ReturnType<typeof setTimeout> | undefined
            const stop = () => {
              if (overall !== undefined) clearTimeout(overall)
              if (idle !== undefined) clearTimeout(idle)
            }
            // A timeout ends the stream with its error; the release below cancels the call in the worker.
            const expire = (failure: () => PluginFailure) => () => {
              stop()
              if (calls.has(id)) emit.fail(failure())
            }
            const idleMillis = streamOptions?.idleTimeoutMillis
            const armIdle = () => {
              if (idleMillis === undefined) return
              if (idle !== undefined) clearTimeout(idle)
              idle = setTimeout(expire(streamOptions!.onIdleTimeout!), idleMillis)
            }
            const onProgress = streamOptions?.onProgress
            const id = register((event) => {
              switch (event._tag) {
                case "Progress":
                  armIdle()
                  return progressOf(onProgress, event)
                case "Chunk":
                  armIdle()
                  return void emit.single(event.value)
                case "End":
                  calls.delete(id)
                  stop()
                  return void emit.end()
                case "Failure":
                  calls.delete(id)
                  stop()
                  return void emit.fail(event.error)
                case "ProcessEnded":
                  stop()
                  return void emit.fail(event.failure)
                default:
                  calls.delete(id)
                  stop()
                  return void emit.fail(new ProtocolError({ detail: `unexpected ${event._tag} for a streaming call` }))
              }
            })
            send({ _tag: "Invoke", id, action, input, streaming: true } satisfies Invoke)
            if (streamOptions?.timeoutMillis !== undefined) overall = setTimeout(expire(streamOptions.onTimeout!), streamOptions.timeoutMillis)
            armIdle()
            return { id, stop }
          }),
          ({ id, stop }) =>
            Effect.sync(() => {
              stop()
              if (id >= 0) startCancel(id)
            }),
        ),
      )

    return {
      pid: child.pid,
      declaration,
      call,
      stream,
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
    child.send({ _tag: "Shutdown" } satisfies Shutdown)
  })
