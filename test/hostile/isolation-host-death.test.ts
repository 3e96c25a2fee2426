import { afterAll, describe, expect, it } from "vitest"
import { rmSync } from "node:fs"
import { Effect } from "effect"
import { tempDir } from "../support/plugins.js"
import { hostilePlugin, isAlive, processTree, startHost, survivorsAfter, tiers } from "./support/isolation.js"

const root = tempDir("plinth-hostile-death-")
afterAll(() => rmSync(root, { recursive: true, force: true }))

const SPIN = `for (let i = 0; i < 2e10; i++) {}`

const actions = `
  spin: action({ description: "", input: Schema.Struct({}), output: Schema.Number, handler: () => Effect.sync(() => { ${SPIN}; return 0 }) }),
  disarm: action({ description: "", input: Schema.Struct({}), output: Schema.Number, handler: () => Effect.sync(() => {
    // Everything a watchdog in the process could rely on, gone; then a blocked event loop.
    process.removeAllListeners("disconnect")
    process.exit = () => undefined
    process.reallyExit = () => undefined
    process.on = () => process
    process.once = () => process
    globalThis.setInterval = () => 0
    globalThis.setTimeout = () => 0
    for (const signal of ["SIGTERM", "SIGHUP", "SIGINT"]) try { process.prependListener(signal, () => {}) } catch {}
    ${SPIN}
    return 0
  }) }),
`

/** Kills the host with SIGKILL while its worker is busy; returns the worker processes that outlive it by 2 s. */
const orphansAfterHostKill = async (tier: "os" | "permissions", id: string, action: string) => {
  const plugin = await Effect.runPromise(hostilePlugin(root, id, { actions }))
  const { host, workerPid } = await startHost(plugin, tier, action)
  const workers = processTree(workerPid)
  expect(workers.every(isAlive)).toBe(true)
  // bwrap: its monitor, the namespace's init and Node; otherwise Node alone.
  expect(workers.length).toBe(tier === "os" ? 3 : 1)
  host.kill("SIGKILL")
  return survivorsAfter(workers, 2000)
}

describe.each(tiers)("isolation tier %s: a worker dies with its host", (tier) => {
  it("a worker blocked in a busy loop is gone within 2 s of kill -9 of its host", async () => {
    expect(await orphansAfterHostKill(tier, `busy-${tier}`, "spin")).toEqual([])
  })

  it("a worker that replaced process.exit, process.on and the timers, then blocked, is gone within 2 s of kill -9 of its host", async () => {
    expect(await orphansAfterHostKill(tier, `disarm-${tier}`, "disarm")).toEqual([])
  })
})
