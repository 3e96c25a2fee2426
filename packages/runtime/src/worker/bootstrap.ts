/*
 * The worker process entry. It imports nothing heavy, so the process reports
 * ready as soon as Node is up (start-up time is part of the product); the
 * runtime (Effect, the protocol, the module linker) loads right after, and
 * messages that arrive meanwhile are queued.
 */

const parentPid = process.ppid

// The IPC channel closes when the host dies, even by SIGKILL.
process.on("disconnect", () => process.exit(0))
// Belt and braces: if the channel somehow stays open, a changed parent means the host is gone.
setInterval(() => {
  if (process.ppid !== parentPid) process.exit(0)
}, 500).unref()

const backlog: Array<unknown> = []
const queue = (message: unknown) => void backlog.push(message)
process.on("message", queue)
process.send!({ _tag: "Ready", pid: process.pid })

const runtime = await import("./WorkerRuntime.js")
process.off("message", queue)
runtime.start(backlog)

export {}
