/*
 * The worker process entry. It imports nothing heavy, so the process reports
 * ready as soon as Node is up (start-up time is part of the product); the
 * runtime (Effect, the protocol, the module linker) loads right after, and
 * messages that arrive meanwhile are queued. Bundled, the runtime is a
 * classic script started from a V8 code cache (RuntimeScript.ts).
 */

import { dirname } from "node:path"
import { fileURLToPath } from "node:url"
import { loadRuntimeScript } from "./RuntimeScript.js"
import { guardSignals } from "./SignalGuard.js"

// Before anything else: plugin code must never get the unguarded signal routes.
guardSignals()

const parentPid = process.ppid

// Best effort only, defeated by a blocked event loop: the launcher (bwrap or setpriv, Isolation.ts) is what
// kills the worker with its host. The IPC channel closes when the host dies, even by SIGKILL.
process.on("disconnect", () => process.exit(0))
// Belt and braces: if the channel somehow stays open, a changed parent means the host is gone.
setInterval(() => {
  if (process.ppid !== parentPid) process.exit(0)
}, 500).unref()

const backlog: Array<unknown> = []
const queue = (message: unknown) => void backlog.push(message)
process.on("message", queue)
process.send!({ _tag: "Ready", pid: process.pid })

/** Set by `scripts/bundle-worker.mjs` in the bundled bootstrap: the runtime bundle's content hash. */
declare const PLINTH_RUNTIME_HASH: string | undefined

const runtime: typeof import("./WorkerRuntime.js") =
  typeof PLINTH_RUNTIME_HASH === "string"
    ? (loadRuntimeScript(dirname(fileURLToPath(import.meta.url)), PLINTH_RUNTIME_HASH) as unknown as typeof import("./WorkerRuntime.js"))
    : await import("./WorkerRuntime.js")
process.off("message", queue)
// Builtins a plugin imports come through this module's import() (see ImportBuiltin).
runtime.start(backlog, (specifier) => import(specifier))

