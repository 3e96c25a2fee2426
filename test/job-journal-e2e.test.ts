import { spawn } from "node:child_process"
import { join } from "node:path"
import { createInterface } from "node:readline"
import Sqlite from "better-sqlite3"
import { describe, expect, it } from "vitest"
import { examplesWorkspace } from "./support/cli.js"
import { tempDir } from "./support/plugins.js"
import { isAlive } from "./support/processes.js"

/*
 * Issue 9 §2, end to end: a real host process (PlinthHost + JobQueueLive,
 * test/support/jobHost.mjs) with two jobs running and 100 pending is killed
 * with SIGKILL; a new host over the same data directory finds the 100 still
 * pending in their order, re-queues the running job that has an
 * idempotency key, and ends the other failed with JobInterrupted.
 */

const hostScript = join(import.meta.dirname, "support", "jobHost.mjs")

const run = (args: ReadonlyArray<string>, onLine: (line: string, kill: () => void) => void = () => {}) => {
  const proc = spawn(process.execPath, [hostScript, ...args], { stdio: ["ignore", "pipe", "pipe"] })
  const lines: Array<string> = []
  let stderr = ""
  proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
  createInterface({ input: proc.stdout }).on("line", (line) => {
    lines.push(line)
    onLine(line, () => proc.kill("SIGKILL"))
  })
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on("close", (code, signal) => resolve({ code, signal })))
  return { lines, ended, stderr: () => stderr }
}

const waitUntil = async (check: () => boolean, millis: number) => {
  const deadline = Date.now() + millis
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  return check()
}

describe("the job journal, end to end", () => {
  it("kill -9 of a host with 2 running and 100 pending jobs: after a restart the 100 are pending in order, the keyed running job re-queued, the other failed JobInterrupted", async () => {
    const workspace = examplesWorkspace("plinth-journal-e2e-")
    const dataDir = tempDir("plinth-journal-e2e-data-")
    const hostArgs = [join(workspace, "plugins"), join(workspace, "PLUGINS.lock"), dataDir]
    let workers: Array<number> = []
    try {
      const crashed = run(["crash", ...hostArgs, "100"], (line, kill) => {
        if (line.startsWith("workers ")) workers = line.slice(8).split(" ").map(Number)
        // Killed without warning the moment the last submit has returned.
        if (line === "all submitted") kill()
      })
      const end = await crashed.ended
      expect({ end, stderr: crashed.stderr() }).toEqual({ end: { code: null, signal: "SIGKILL" }, stderr: "" })
      const [keyed, unkeyed] = crashed.lines.find((l) => l.startsWith("running "))!.split(" ").slice(1) as [string, string]
      const submitted = crashed.lines.filter((l) => l.startsWith("submitted ")).map((l) => {
        const [, id, priority] = l.split(" ")
        return { id: id!, priority: Number(priority) }
      })
      expect(submitted).toHaveLength(100)
      // The run order: priority first (9 for the keyed job), then submission order.
      const runOrder = [keyed, ...[...submitted].sort((a, b) => b.priority - a.priority).map((s) => s.id)]

      // The dead host's workers go too (they were running ten-minute jobs).
      expect(await waitUntil(() => workers.every((pid) => !isAlive(pid)), 10_000)).toBe(true)

      const db = new Sqlite(join(dataDir, "plinth.db"), { readonly: true })
      try {
        expect(db.pragma("integrity_check")).toEqual([{ integrity_check: "ok" }])
      } finally {
        db.close()
      }

      const restarted = run(["inspect", ...hostArgs, keyed, unkeyed, ...submitted.map((s) => s.id)])
      const restartEnd = await restarted.ended
      expect({ restartEnd, stderr: restarted.stderr() }).toEqual({ restartEnd: { code: 0, signal: null }, stderr: "" })
      const seen = JSON.parse(restarted.lines.at(-1)!) as {
        running: Array<string>
        pending: Array<string>
        jobs: Record<string, { status: string; error?: { tag: string; message: string }; idempotencyKey?: string }>
      }
      // The restarted queue may already have started the first jobs in run order (two slots); the rest wait, in order.
      expect(seen.running.length).toBeLessThanOrEqual(2)
      expect([...seen.running].sort()).toEqual([...runOrder.slice(0, seen.running.length)].sort())
      expect(seen.pending).toEqual(runOrder.slice(seen.running.length))
      // Every one of the 100 is there, none finished.
      for (const { id } of submitted) expect(["pending", "running"]).toContain(seen.jobs[id]?.status)
      expect(seen.jobs[keyed]).toMatchObject({ idempotencyKey: "safe-to-rerun" })
      expect(["pending", "running"]).toContain(seen.jobs[keyed]?.status)
      expect(seen.jobs[unkeyed]).toMatchObject({ status: "failed", error: { tag: "JobInterrupted" } })
      expect(seen.jobs[unkeyed]?.error?.message).toContain("was running when its host stopped")
    } finally {
      for (const pid of workers) if (isAlive(pid)) process.kill(pid, "SIGKILL")
    }
  }, 120_000)
})
