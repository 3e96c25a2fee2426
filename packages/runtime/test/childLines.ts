import type { ChildProcessWithoutNullStreams } from "node:child_process"
import { existsSync } from "node:fs"
import { createInterface } from "node:readline"
import { expect } from "vitest"

/** Every stdout line of a child, as it arrives, and how it ended. */
export const watch = (proc: ChildProcessWithoutNullStreams, onLine: (line: string) => void = () => {}) => {
  const lines: Array<string> = []
  let stderr = ""
  proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
  createInterface({ input: proc.stdout }).on("line", (line) => (lines.push(line), onLine(line)))
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on("close", (code, signal) => resolve({ code, signal })))
  return { lines, ended, stderr: () => stderr }
}

/** Resolves once the child has printed `line`; fails if it ends first. */
export const waitFor = (lines: Array<string>, line: string, proc: ChildProcessWithoutNullStreams) =>
  new Promise<void>((resolve, reject) => {
    if (lines.includes(line)) return resolve()
    proc.stdout.on("data", () => lines.includes(line) && resolve())
    proc.on("close", () => reject(new Error(`child ended before printing '${line}'`)))
  })

/**
 * Starts one child per name on `dataDir` (`<child> open <dataDir> <name>`),
 * waits until each has loaded and says "ready", then releases them together so
 * that they race for the fresh file; checks that the file did not exist before
 * the race and that each child exited 0 with nothing on stderr; gives each one's lines.
 */
export const raceOnFreshFile = async (
  start: (...args: Array<string>) => ChildProcessWithoutNullStreams,
  dataDir: string,
  names: ReadonlyArray<string>,
): Promise<ReadonlyArray<ReadonlyArray<string>>> => {
  const procs = names.map((name) => start("open", dataDir, name))
  const watched = procs.map((p) => watch(p))
  await Promise.all(procs.map((p, i) => waitFor(watched[i]!.lines, "ready", p)))
  expect(existsSync(dataDir)).toBe(false)
  for (const p of procs) p.stdin.end("go\n")
  const ends = await Promise.all(watched.map((w) => w.ended))
  ends.forEach((end, i) => expect({ end, stderr: watched[i]!.stderr() }).toEqual({ end: { code: 0, signal: null }, stderr: "" }))
  return watched.map((w) => w.lines)
}
