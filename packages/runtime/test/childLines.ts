import type { ChildProcessWithoutNullStreams } from "node:child_process"
import { createInterface } from "node:readline"

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
