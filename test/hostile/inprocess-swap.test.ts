import { spawn, type ChildProcess } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { lockNow, workspace, writePlugin } from "../support/plugins.js"

/*
 * Attack: swap a plugin's files on disk while an in-process host loads it, so
 * that the bytes imported are not the bytes verified. Each swap is one atomic
 * rename(2) of an evil version over the good one and back, in another process,
 * as fast as it can; the host loads the plugin over and over, each time into a
 * fresh registry. The evil versions count their runs in a global of the host.
 */

const support = join(import.meta.dirname, "support")
const started: Array<ChildProcess> = []

afterEach(() => {
  for (const child of started.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
})

const evil = (exports: string) => `globalThis.plinthEvilRuns = (globalThis.plinthEvilRuns ?? 0) + 1\n${exports}\n`

/** A plugin whose entry, a relative import and a package in its own node_modules can each be swapped. */
const swappable = {
  "index.js": {
    good:
      `import { version as lib } from "./lib/impl.js"\n` +
      `import { version as dep } from "dep"\n` +
      `export default { version: lib === "good" && dep === "good" ? "good" : "mixed" }\n`,
    evil: evil(`export default { version: "evil" }`),
  },
  "lib/impl.js": { good: `export const version = "good"\n`, evil: evil(`export const version = "evil"`) },
  "node_modules/dep/index.js": { good: `export const version = "good"\n`, evil: evil(`export const version = "evil"`) },
} as const

const setUp = async (swapped: ReadonlyArray<keyof typeof swappable>) => {
  const ws = workspace()
  writePlugin(ws.root, {
    id: "swapped",
    files: {
      ...Object.fromEntries(Object.entries(swappable).map(([path, versions]) => [path, versions.good])),
      "node_modules/dep/package.json": JSON.stringify({ name: "dep", type: "module", exports: { ".": "./index.js" } }),
    },
  })
  await lockNow(ws.root, ws.lock)
  const staging = join(ws.dir, "staging")
  mkdirSync(staging)
  const spec = swapped.map((path, i) => ({ target: join(ws.root, "swapped", path), staging: join(staging, String(i)), ...swappable[path] }))
  writeFileSync(join(ws.dir, "swaps.json"), JSON.stringify(spec))
  return ws
}

const run = (args: ReadonlyArray<string>, onLine?: (line: string) => void) => {
  // An exit is expected only from the host; the swapper runs until killed.
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] })
  started.push(child)
  let out = ""
  let err = ""
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    out += chunk
    if (onLine !== undefined && out.includes("\n")) onLine(out)
  })
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (err += chunk))
  const exited = new Promise<string>((resolve, reject) =>
    child.on("exit", (code, signal) => (code === 0 ? resolve(out) : reject(new Error(`${args[0]} exited ${code ?? signal}: ${err}`)))),
  )
  return { child, exited }
}

interface HostReport {
  readonly good: number
  readonly mismatch: number
  readonly other: Readonly<Record<string, number>>
  readonly evilRuns: number
  readonly trials: number
  readonly elapsedMs: number
}

/** Runs a host for `trials` loads while a swapper process keeps swapping `swapped`. */
const race = async (mode: "verified" | "disk", trials: number, swapped: ReadonlyArray<keyof typeof swappable>): Promise<HostReport> => {
  const ws = await setUp(swapped)
  let swapping!: () => void
  const swapperReady = new Promise<void>((resolve) => (swapping = resolve))
  const swapper = run([join(support, "inprocess-swapper.mjs"), join(ws.dir, "swaps.json")], () => swapping())
  await Promise.race([swapperReady, swapper.exited])
  const host = run([join(support, "inprocess-host.mjs"), ws.root, ws.lock, String(trials), mode])
  const report = JSON.parse(await host.exited) as HostReport
  // The swapper was still at it when the last load finished.
  expect(swapper.child.exitCode).toBe(null)
  swapper.child.kill("SIGKILL")
  await swapper.exited.catch(() => undefined)
  console.log(`in-process loads (${mode}) racing a swapper: ${JSON.stringify(report)}`)
  return report
}

describe("in-process loading runs exactly the verified bytes", () => {
  it("1,000 loads racing swaps of the entry, a relative import and an own node_modules package: the evil code never runs", async () => {
    const report = await race("verified", 1000, ["index.js", "lib/impl.js", "node_modules/dep/index.js"])
    expect(report.evilRuns).toBe(0)
    expect(report.other).toEqual({})
    expect(report.good + report.mismatch).toBe(1000)
    // Both outcomes happen: the race was on, and verified loads still succeed under it.
    expect(report.mismatch).toBeGreaterThan(0)
    expect(report.good).toBeGreaterThan(0)
  }, 120_000)

  it("control: importing from disk after verification (the loader before ADR 14) does run swapped-in code", async () => {
    const report = await race("disk", 200, ["index.js"])
    expect(report.evilRuns).toBeGreaterThan(0)
  }, 60_000)
})
