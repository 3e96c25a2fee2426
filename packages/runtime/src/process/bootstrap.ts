/*
 * The worker process entry. It imports nothing heavy, so the process reports
 * ready as soon as Node is up (start-up time is part of the product); the
 * runtime (Effect, the protocol, the module linker) loads right after, and
 * frames that arrive meanwhile are queued. Bundled, the runtime is a
 * classic script started from a V8 code cache (RuntimeScript.ts).
 */

// First: the flags V8 checks every code cache against are the defaults from here on (DefaultV8Flags.ts).
import "./DefaultV8Flags.js"
import { Socket } from "node:net"
import { dirname } from "node:path"
import { fileURLToPath } from "node:url"
import { CHANNEL_FD, encodeFrame, frameCapsFromArgv, makeFrameReader, makeFrameWriter } from "../wire/Framing.js"
import { loadRuntimeScript } from "./RuntimeScript.js"
import { guardSignals } from "./SignalGuard.js"
import type { WorkerChannel } from "./WorkerRuntime.js"

// Before anything else: plugin code must never get the unguarded signal routes.
guardSignals()

const parentPid = process.ppid

// The channel to the host is fd 3 (wire/Framing.ts), held in this module's
// closures only. Node's own IPC surface is removed should it exist (a
// launcher could pass one on), and so is the debugging call that lists live
// handles (the channel's socket among them), so plugin code finds no
// reference to the channel on `process`.
for (const key of ["send", "channel", "connected", "disconnect", "_getActiveHandles", "_getActiveRequests"]) Reflect.deleteProperty(process, key)

const caps = frameCapsFromArgv(process.argv)
// Reads land in one reused buffer and go straight to the frame reader (which copies what it keeps),
// with no readable-stream machinery in between: less work and no garbage per read.
const readBuffer = Buffer.allocUnsafe(64 * 1024)
const onread = { buffer: readBuffer, callback: (bytes: number, buffer: Uint8Array) => void reader.push(Buffer.from(buffer.buffer, buffer.byteOffset, bytes)) }
// `onread` is honoured by the Socket constructor (Node 12+), though @types/node lists it for connect() only.
const socket = new Socket({ fd: CHANNEL_FD, readable: true, writable: true, onread } as ConstructorParameters<typeof Socket>[0])
// Best effort only, defeated by a blocked event loop: the launcher (bwrap or setpriv, Isolation.ts) is what
// kills the worker with its host. The channel ends when the host dies, even by SIGKILL.
const hostGone = () => process.exit(0)
socket.on("end", hostGone)
socket.on("close", hostGone)
socket.on("error", hostGone)
// Belt and braces: a changed parent means the host is gone.
setInterval(() => {
  if (process.ppid !== parentPid) process.exit(0)
}, 500).unref()

const backlog: Array<readonly [string, number]> = []
let onFrame = (text: string, bytes: number): void => void backlog.push([text, bytes])
let brokenDetail: string | undefined
let onError = (detail: string): void => void (brokenDetail = detail)
const reader = makeFrameReader(
  caps.toWorker,
  (text, bytes) => onFrame(text, bytes),
  (detail) => onError(detail),
)
const write = makeFrameWriter((bytes) => void socket.write(bytes), caps.fromWorker)
// Written at once, not through the per-tick writer: the runtime is loaded synchronously below, and
// Ready must not wait for it (the host sends Load meanwhile).
const ready = encodeFrame({ _tag: "Ready", pid: process.pid })
const readyBytes = Buffer.allocUnsafe(4 + ready.bytes)
readyBytes.writeUInt32BE(ready.bytes, 0)
readyBytes.write(ready.text, 4)
socket.write(readyBytes)

const channel: WorkerChannel = {
  caps,
  write,
  listen: (frameListener, errorListener) => {
    for (const [text, bytes] of backlog.splice(0)) frameListener(text, bytes)
    if (brokenDetail !== undefined) errorListener(brokenDetail)
    onFrame = frameListener
    onError = errorListener
  },
}

/** Set by `scripts/bundle-worker.mjs` in the bundled bootstrap: the runtime bundle's content hash. */
declare const PLINTH_RUNTIME_HASH: string | undefined

// Builtins a plugin imports come through this module's import() (see ImportBuiltin).
const startRuntime = (runtime: typeof import("./WorkerRuntime.js")) => runtime.start(channel, (specifier) => import(specifier))
// No top-level await: the bundled bootstrap is CommonJS (scripts/bundle-worker.mjs).
if (typeof PLINTH_RUNTIME_HASH === "string") {
  startRuntime(loadRuntimeScript(dirname(fileURLToPath(import.meta.url)), PLINTH_RUNTIME_HASH) as unknown as typeof import("./WorkerRuntime.js"))
} else {
  void import("./WorkerRuntime.js").then(startRuntime)
}
