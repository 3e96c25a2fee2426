import { Chunk, Deferred, Duration, Effect, Either, Exit, FiberId, Option, Redacted, Scope, Stream } from "effect"
import {
  describeJsonValueProblem,
  jsonValueProblem,
  PluginInputError,
  ProtocolError,
  WorkerStartFailed,
  type DefinitionInvalid,
  type PluginDeclaration,
  type PluginFailure,
} from "@plinth/domain"
import { workerExitFailure } from "./WorkerExit.js"
import { ProcessSpawner, type ChildProcessHandle, type ProcessExit, type SpawnRequest } from "./ProcessSpawner.js"
import { encodeFrame, frameCapsArg, makeFrameReader, makeFrameWriter, resolveFrameCaps, type EncodedFrame, type FrameCaps } from "../wire/Framing.js"
import {
  decodeWorkerMessage,
  encodeHostMessage,
  parseFrame,
  type CallUsage,
  type Credit,
  type Interrupt,
  type Invoke,
  type Lifecycle,
  type Load,
  type Shutdown,
  type WorkerMessage,
} from "../wire/Protocol.js"

/*
 * One worker process seen from the host: the start-up handshake, calls
 * correlated by id, and the rule that when the process ends every call in
 * flight on it fails with a typed error.
 *
 * The host trusts nothing the worker sends: every frame is capped, parsed and
 * decoded; the handshake must carry this start's secret; a reply must belong
 * to a call in flight on this worker and fit its kind (a chunk for a stream,
 * within the credit it was granted). Anything else is a ProtocolError: the
 * worker is killed and every call in flight on it fails with that error.
 */

export interface ProgressReport {
  readonly fraction: number
  readonly message?: string | undefined
}

type CallEvent = WorkerMessage | { readonly _tag: "ProcessEnded"; readonly failure: PluginFailure }
type CallListener = (event: CallEvent, bytes: number) => void

interface CallState {
  readonly streaming: boolean
  listener: CallListener
  /** Set once the host asked the worker to interrupt the call: only then may it answer Interrupted. */
  cancelling: boolean
  /** A stream's credit as the host granted it, less what the worker has used (bytes may go negative by one chunk). */
  chunkCredit: number
  byteCredit: number
  /** Per call: its own grace period and who to tell how its cancellation went (CallOptions.cancel). */
  cancel?: CancelOptions | undefined
}

/**
 * A streaming call's window: the worker may have at most this many chunks and
 * (plus one chunk) bytes on their way to the host or waiting for the consumer.
 */
export interface StreamWindow {
  readonly chunks: number
  readonly bytes: number
}

export const defaultStreamWindow: StreamWindow = { chunks: 32, bytes: 4 * 1024 * 1024 }

/**
 * How a cancelled call stopped: "started" when the worker is asked to stop,
 * then "stopped" (it reported back) or "killed" (the grace period ran out, or
 * the process was gone, and the worker is dead).
 */
export type CancelProgress = "started" | "stopped" | "killed"

export interface CancelOptions {
  /** This call's grace period instead of the worker's `interruptGrace`. */
  readonly graceMillis?: number | undefined
  readonly onCancel?: ((progress: CancelProgress) => void) | undefined
}

export interface CallOptions {
  /** Per-call cancellation: its grace period and an observer (the job queue's cancel phases). */
  readonly cancel?: CancelOptions | undefined
  readonly onProgress?: ((report: ProgressReport) => void) | undefined
  /** Told what the worker measured for the call (its final frame's `usage`), just before the call settles. */
  readonly onUsage?: ((usage: CallUsage) => void) | undefined
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
  /** What the worker reported for the last call that ended on it, if any. */
  readonly lastUsage: () => CallUsage | undefined
  /** Runs the plugin's `onEnable`/`onDisable` hook in the worker (nothing when it defines none). */
  readonly lifecycle: (hook: "enable" | "disable") => Effect.Effect<void, PluginFailure>
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
  /**
   * True once the host has killed the process (a broken protocol, a contract
   * breach, a cancelled call past its grace) and its exit has not been seen
   * yet: nothing more may be sent to it; wait for `exited`.
   */
  readonly isDying: () => boolean
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
  /** The plugin's declared secrets that are set; unwrapped only into the Load frame. */
  readonly secrets?: ReadonlyArray<{ readonly name: string; readonly value: Redacted.Redacted<string> }> | undefined
  readonly spawn: SpawnRequest
  readonly startTimeout: Duration.DurationInput
  readonly interruptGrace: Duration.DurationInput
  /** Frame caps per direction (wire/Framing.ts has the defaults). */
  readonly maxFrameBytes?: Partial<FrameCaps> | undefined
  readonly streamWindow?: StreamWindow | undefined
}

/** A fresh secret per start, from the Web Crypto generator (hashing/ alone imports node:crypto). */
const newSecret = (): string => Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url")

/** The input of a call, serialized, or why it cannot be sent. */
const encodeInvoke = (id: number, action: string, input: unknown, streaming: boolean, cap: number): EncodedFrame | PluginInputError => {
  const problem = jsonValueProblem(input)
  if (problem !== undefined) {
    return new PluginInputError({
      message: `invalid input for '${action}': not a JSON value: ${describeJsonValueProblem(problem)}`,
      fieldsInvalid: [problem.path.join(".") || "(root)"],
    })
  }
  const frame = encodeFrame({ _tag: "Invoke", id, action, input, streaming } satisfies Invoke)
  if (frame.bytes > cap) {
    return new PluginInputError({
      message: `invalid input for '${action}': ${frame.bytes} bytes as JSON, over the cap of ${cap} (maxFrameBytes.toWorker)`,
    })
  }
  return frame
}

/** Starts a worker and waits, up to the deadline, until it has loaded the plugin. Closing the scope stops it. */
/** Why a worker did not become usable: it did not start, or the plugin's definition breaks a rule (DefinitionRules.ts). */
export type WorkerStartFailure = WorkerStartFailed | DefinitionInvalid | PluginInputError

export const startWorker = (options: WorkerStartOptions): Effect.Effect<WorkerConnection, WorkerStartFailure, Scope.Scope | ProcessSpawner> =>
  Effect.gen(function* () {
    const spawner = yield* ProcessSpawner
    const caps = yield* Effect.try({
      try: () => resolveFrameCaps(options.maxFrameBytes),
      catch: (error) => new WorkerStartFailed({ plugin: options.plugin, reason: String(error), stderrTail: "" }),
    })
    const window = options.streamWindow ?? defaultStreamWindow
    const secret = newSecret()
    // The Load frame is built before anything is spawned: a config JSON cannot carry, or too much to send, fails here.
    const configProblem = jsonValueProblem(options.config)
    if (configProblem !== undefined) {
      return yield* new WorkerStartFailed({
        plugin: options.plugin,
        reason: `the config is not a JSON value: ${describeJsonValueProblem(configProblem)}`,
        stderrTail: "",
      })
    }
    const loadFrame = encodeFrame(
      encodeHostMessage({
        _tag: "Load",
        secret,
        plugin: options.plugin,
        entry: options.entry,
        files: options.files,
        config: options.config,
        env: options.env,
        dataDir: options.dataDir ?? null,
        secrets: (options.secrets ?? []).map(({ name, value }) => ({ name, value: Redacted.value(value) })),
      }),
    )
    if (loadFrame.bytes > caps.toWorker) {
      return yield* new WorkerStartFailed({
        plugin: options.plugin,
        reason: `the plugin's files and config take ${loadFrame.bytes} bytes as JSON, over the cap of ${caps.toWorker} (maxFrameBytes.toWorker)`,
        stderrTail: "",
      })
    }
    const spawnRequest: SpawnRequest = { ...options.spawn, args: [...(options.spawn.args ?? []), frameCapsArg(caps)] }
    let handle: ChildProcessHandle | undefined
    const writeFrame = makeFrameWriter((bytes) => handle?.write(bytes), caps.toWorker)
    const child: ChildProcessHandle = yield* Effect.acquireRelease(spawner.spawn(spawnRequest), (child) =>
      stopGracefully(child, writeFrame),
    )
    handle = child
    const exited = yield* Deferred.make<ProcessExit>()
    const handshake = yield* Deferred.make<PluginDeclaration, WorkerStartFailure>()
    const calls = new Map<number, CallState>()
    const cancellations = new Set<Deferred.Deferred<void>>()
    let killedByHost: string | undefined
    let nextId = 0
    let ready = false
    let handshakeDone = false
    let broken = false
    let exitedFlag = false
    let exitValue = Option.none<ProcessExit>()
    let lastUsage: CallUsage | undefined
    /** Keeps a final frame's usage and tells the caller, who asked for it. */
    const usageOf = (onUsage: ((usage: CallUsage) => void) | undefined, usage: CallUsage | undefined) => {
      if (usage === undefined) return
      lastUsage = usage
      onUsage?.(usage)
    }
    const graceMillis = Duration.toMillis(options.interruptGrace)

    const startFailed = (reason: string, exit?: ProcessExit) =>
      new WorkerStartFailed({
        plugin: options.plugin,
        reason,
        stderrTail: child.stderrTail(),
        ...(exit !== undefined ? { exitCode: exit.exitCode, signal: exit.signal } : {}),
      })

    const send = (message: Interrupt | Credit | Shutdown) => writeFrame(encodeFrame(message))

    const breakProtocol = (detail: string): void => {
      if (broken) return
      broken = true
      reader.stop()
      killedByHost = `the worker broke the protocol: ${detail}`
      Deferred.unsafeDone(handshake, Exit.fail(startFailed(killedByHost)))
      const failure = new ProtocolError({ detail })
      for (const [id, call] of calls) {
        calls.delete(id)
        call.listener({ _tag: "ProcessEnded", failure }, 0)
      }
      child.kill("SIGKILL")
    }

    const receive = (text: string, bytes: number): void => {
      if (broken) return
      const parsed = parseFrame(text)
      if (Either.isLeft(parsed)) return breakProtocol(parsed.left.detail)
      const messages = parsed.right
      // A chunk is accounted for by the size of its frame, so it must have a frame of its own.
      const batched = messages.length > 1
      for (let i = 0; i < messages.length && !broken; i++) receiveMessage(messages[i], bytes, batched)
    }
    const receiveMessage = (raw: unknown, bytes: number, batched: boolean): void => {
      const decoded = decodeWorkerMessage(raw)
      if (Either.isLeft(decoded)) return breakProtocol(decoded.left.detail)
      const message = decoded.right
      if (batched && message._tag === "Chunk") return breakProtocol(`a Chunk for call ${message.id} inside a batch`)
      if (!ready) {
        if (message._tag !== "Ready") return breakProtocol(`${message._tag} before Ready`)
        ready = true
        return writeFrame(loadFrame)
      }
      switch (message._tag) {
        case "Ready":
          return breakProtocol("a second Ready")
        case "Loaded":
        case "LoadFailed":
          if (handshakeDone) return breakProtocol(`${message._tag} after the handshake`)
          // Only the runtime holds the secret: a handshake frame without it was forged by plugin code.
          if (message.secret !== secret) return breakProtocol(`${message._tag} without this start's secret`)
          handshakeDone = true
          return void Deferred.unsafeDone(
            handshake,
            message._tag === "Loaded"
              ? Exit.succeed(message.declaration)
              : // A broken rule of the definition is the author's to fix, and says which: it stays itself.
                message.error._tag === "DefinitionInvalid" && message.error.plugin === options.plugin
                ? Exit.fail(message.error)
                : // So does a config the plugin's own Schema refused: the caller's to fix, field by field.
                  message.error._tag === "PluginInputError"
                  ? Exit.fail(message.error)
                : Exit.fail(startFailed(`the plugin failed to load: ${message.error._tag}: ${message.error.message}`)),
          )
        case "Rejected":
          return breakProtocol(`the worker rejected a host message: ${message.detail}`)
        default: {
          const call = calls.get(message.id)
          if (call === undefined) return breakProtocol(`${message._tag} for call ${message.id}, which is not in flight`)
          switch (message._tag) {
            case "Success":
              if (call.streaming) return breakProtocol(`Success for call ${message.id}, a streaming call`)
              break
            case "Chunk":
            case "End":
              if (!call.streaming) return breakProtocol(`${message._tag} for call ${message.id}, a unary call`)
              if (message._tag === "Chunk") {
                if (call.chunkCredit < 1 || call.byteCredit <= 0) return breakProtocol(`a Chunk beyond the credit of call ${message.id}`)
                call.chunkCredit--
                call.byteCredit -= bytes
              }
              break
            case "Interrupted":
              if (!call.cancelling) return breakProtocol(`Interrupted for call ${message.id}, which was not cancelled`)
              break
          }
          call.listener(message, bytes)
        }
      }
    }
    const reader = makeFrameReader(caps.fromWorker, receive, breakProtocol)
    child.onData(reader.push)
    child.onExit((exit) => {
      exitedFlag = true
      exitValue = Option.some(exit)
      reader.stop()
      Deferred.unsafeDone(exited, Exit.succeed(exit))
      Deferred.unsafeDone(
        handshake,
        Exit.fail(startFailed(ready ? "the worker exited while loading the plugin" : "the worker exited before it was ready", exit)),
      )
      const failure = workerExitFailure({ plugin: options.plugin, exit, killedByHost, stderrTail: child.stderrTail() })
      for (const [id, call] of calls) {
        calls.delete(id)
        call.listener({ _tag: "ProcessEnded", failure }, 0)
      }
    })

    const declaration = yield* Deferred.await(handshake).pipe(
      Effect.timeoutFail({
        duration: options.startTimeout,
        onTimeout: () => startFailed(`not ready within ${Duration.format(options.startTimeout)}`),
      }),
      Effect.tapError(() => Effect.sync(() => child.kill("SIGKILL"))),
    )

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
      const call = calls.get(id)
      if (call === undefined || call.cancelling) return
      const observer = call.cancel?.onCancel
      if (exitedFlag) {
        observer?.("started")
        observer?.("killed")
        return
      }
      const settled = Deferred.unsafeMake<void>(FiberId.none)
      cancellations.add(settled)
      let timer: ReturnType<typeof setTimeout> | undefined
      let told = false
      const done = (how: "stopped" | "killed") => {
        if (timer !== undefined) clearTimeout(timer)
        cancellations.delete(settled)
        Deferred.unsafeDone(settled, Exit.void)
        if (!told) {
          told = true
          observer?.(how)
        }
      }
      call.cancelling = true
      observer?.("started")
      call.listener = (event) => {
        if (event._tag === "Progress" || event._tag === "Chunk") return
        calls.delete(id)
        done(event._tag === "ProcessEnded" ? "killed" : "stopped")
      }
      child.onExit(() => done("killed"))
      timer = setTimeout(() => {
        killedByHost ??= "a cancelled call did not stop within the grace period"
        child.kill("SIGKILL")
      }, call.cancel?.graceMillis ?? graceMillis)
      send({ _tag: "Interrupt", id })
    }

    const cancel = (id: number) => Effect.sync(() => startCancel(id))

    const progressOf = (onProgress: ((report: ProgressReport) => void) | undefined, message: WorkerMessage) => {
      if (message._tag === "Progress" && onProgress !== undefined) onProgress({ fraction: message.fraction, message: message.message })
    }

    const currentExitFailure = () =>
      workerExitFailure({ plugin: options.plugin, exit: Option.getOrThrow(exitValue), killedByHost, stderrTail: child.stderrTail() })

    // The call path is plain callbacks around one Effect.async: no fiber,
    // Deferred or Schema encoding per call beyond the caller's own fiber
    // (measured: this is what brings a round trip near the raw channel cost).
    const call = (action: string, input: unknown, callOptions?: CallOptions): Effect.Effect<unknown, PluginFailure> =>
      Effect.async<unknown, PluginFailure>((resume) => {
        if (exitedFlag) return resume(Effect.fail(currentExitFailure()))
        const id = nextId++
        const frame = encodeInvoke(id, action, input, false, caps.toWorker)
        if (frame instanceof PluginInputError) return resume(Effect.fail(frame))
        let timer: ReturnType<typeof setTimeout> | undefined
        const onProgress = callOptions?.onProgress
        const onUsage = callOptions?.onUsage
        const settle = (effect: Effect.Effect<unknown, PluginFailure>) => {
          calls.delete(id)
          if (timer !== undefined) clearTimeout(timer)
          resume(effect)
        }
        calls.set(id, {
          streaming: false,
          cancelling: false,
          chunkCredit: 0,
          byteCredit: 0,
          cancel: callOptions?.cancel,
          listener: (event) => {
            switch (event._tag) {
              case "Progress":
                return progressOf(onProgress, event)
              case "Success":
                usageOf(onUsage, event.usage)
                return settle(Effect.succeed(event.value))
              case "Failure":
                usageOf(onUsage, event.usage)
                return settle(Effect.fail(event.error))
              case "ProcessEnded":
                return settle(Effect.fail(event.failure))
            }
          },
        })
        writeFrame(frame)
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

    /** A hook call: correlated like a unary call; not cancellable (hooks are short and run to their end). */
    const lifecycle = (hook: "enable" | "disable"): Effect.Effect<void, PluginFailure> =>
      Effect.async<void, PluginFailure>((resume) => {
        if (exitedFlag) return resume(Effect.fail(currentExitFailure()))
        const id = nextId++
        calls.set(id, {
          streaming: false,
          cancelling: false,
          chunkCredit: 0,
          byteCredit: 0,
          listener: (event) => {
            if (event._tag === "Progress") return
            calls.delete(id)
            if (event._tag === "Success") return resume(Effect.void)
            if (event._tag === "Failure" || event._tag === "ProcessEnded") return resume(Effect.fail(event._tag === "Failure" ? event.error : event.failure))
          },
        })
        writeFrame(encodeFrame({ _tag: "Lifecycle", id, hook } satisfies Lifecycle))
      })

    /*
     * A stream is pulled: the host grants the worker a window of credit when
     * the call starts and re-grants what the consumer takes, so however fast
     * the plugin produces, the host holds at most one window of chunks.
     */
    const stream = (action: string, input: unknown, streamOptions?: StreamCallOptions): Stream.Stream<unknown, PluginFailure> =>
      Stream.fromPull(
        Effect.map(
          Effect.acquireRelease(
            Effect.sync(() => openStream(action, input, streamOptions)),
            (opened) => Effect.sync(() => opened.close()),
          ),
          (opened) => opened.pull,
        ),
      )

    const openStream = (action: string, input: unknown, streamOptions: StreamCallOptions | undefined) => {
      const buffer: Array<unknown> = []
      let bufferedBytes = 0
      let ended = false
      let failure: PluginFailure | undefined
      let waiting: ((effect: Effect.Effect<Chunk.Chunk<unknown>, Option.Option<PluginFailure>>) => void) | undefined
      let overall: ReturnType<typeof setTimeout> | undefined
      let idle: ReturnType<typeof setTimeout> | undefined
      const stopTimers = () => {
        if (overall !== undefined) clearTimeout(overall)
        if (idle !== undefined) clearTimeout(idle)
      }
      const id = nextId++

      /** Hands the consumer everything buffered (then the end or the failure) and re-grants the credit it frees. */
      const take = (): Effect.Effect<Chunk.Chunk<unknown>, Option.Option<PluginFailure>> | undefined => {
        if (buffer.length > 0) {
          const taken = buffer.splice(0)
          const bytes = bufferedBytes
          bufferedBytes = 0
          const call = calls.get(id)
          if (call !== undefined && !call.cancelling) {
            call.chunkCredit += taken.length
            call.byteCredit += bytes
            send({ _tag: "Credit", id, chunks: taken.length, bytes })
          }
          return Effect.succeed(Chunk.unsafeFromArray(taken))
        }
        if (failure !== undefined) return Effect.fail(Option.some(failure))
        if (ended) return Effect.fail(Option.none())
        return undefined
      }
      const wake = () => {
        if (waiting === undefined) return
        const next = take()
        if (next === undefined) return
        const resume = waiting
        waiting = undefined
        resume(next)
      }
      const fail = (error: PluginFailure) => {
        stopTimers()
        if (failure === undefined && !ended) failure = error
        wake()
      }

      const opened = (close: () => void) => ({
        close,
        pull: Effect.async<Chunk.Chunk<unknown>, Option.Option<PluginFailure>>((resume) => {
          const next = take()
          if (next !== undefined) return resume(next)
          waiting = resume
          return Effect.sync(() => void (waiting = undefined))
        }),
      })

      if (exitedFlag) {
        failure = currentExitFailure()
        return opened(() => {})
      }
      const frame = encodeInvoke(id, action, input, true, caps.toWorker)
      if (frame instanceof PluginInputError) {
        failure = frame
        return opened(() => {})
      }
      // A timeout ends the stream with its error; closing the stream cancels the call in the worker.
      const expire = (timeoutFailure: () => PluginFailure) => () => {
        if (calls.has(id)) fail(timeoutFailure())
      }
      const idleMillis = streamOptions?.idleTimeoutMillis
      const armIdle = () => {
        if (idleMillis === undefined) return
        if (idle !== undefined) clearTimeout(idle)
        idle = setTimeout(expire(streamOptions!.onIdleTimeout!), idleMillis)
      }
      const onProgress = streamOptions?.onProgress
      calls.set(id, {
        streaming: true,
        cancelling: false,
        chunkCredit: window.chunks,
        byteCredit: window.bytes,
        listener: (event, bytes) => {
          switch (event._tag) {
            case "Progress":
              armIdle()
              return progressOf(onProgress, event)
            case "Chunk":
              armIdle()
              buffer.push(event.value)
              bufferedBytes += bytes
              return wake()
            case "End":
              calls.delete(id)
              stopTimers()
              usageOf(streamOptions?.onUsage, event.usage)
              ended = true
              return wake()
            case "Failure":
              calls.delete(id)
              usageOf(streamOptions?.onUsage, event.usage)
              return fail(event.error)
            case "ProcessEnded":
              return fail(event.failure)
          }
        },
      })
      writeFrame(frame)
      send({ _tag: "Credit", id, chunks: window.chunks, bytes: window.bytes })
      if (streamOptions?.timeoutMillis !== undefined) overall = setTimeout(expire(streamOptions.onTimeout!), streamOptions.timeoutMillis)
      armIdle()
      return opened(() => {
        stopTimers()
        startCancel(id)
      })
    }

    return {
      pid: child.pid,
      declaration,
      call,
      stream,
      lastUsage: () => lastUsage,
      lifecycle,
      cancel,
      cancellationsSettled: Effect.suspend(() => Effect.forEach([...cancellations], Deferred.await, { discard: true })),
      hasExited,
      isIdleAndAlive: () => !exitedFlag && !broken && cancellations.size === 0,
      isDying: () => !exitedFlag && killedByHost !== undefined,
      exited: Deferred.await(exited),
      kill,
    } satisfies WorkerConnection
  })

/** Asks the worker to tear down and exit; kills it if it has not within a second. */
const stopGracefully = (child: ChildProcessHandle, writeFrame: (frame: EncodedFrame) => void) =>
  Effect.async<void>((resume) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 1000)
    child.onExit(() => {
      clearTimeout(timer)
      resume(Effect.void)
    })
    writeFrame(encodeFrame({ _tag: "Shutdown" } satisfies Shutdown))
  })
