import { spawn } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import Sqlite from "better-sqlite3"
import { describe, expect, it } from "vitest"
import { databasePath, SCHEMA_VERSION } from "@plinth/runtime"
import { raceOnFreshFile, waitFor, watch } from "./childLines.js"

const child = join(import.meta.dirname, "fixtures", "journalChild.mjs")
const start = (...args: Array<string>) => spawn(process.execPath, [child, ...args], { stdio: ["pipe", "pipe", "pipe"] })

const RANK = { pending: 0, running: 1, completed: 2 } as const
type Reported = keyof typeof RANK

describe("the job journal across processes", () => {
  it("kill -9 while 8 writers journal jobs: every write that had returned is there, and the file is intact and opens again", async () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), "plinth-journal-kill-")), "data")
    const proc = start("journal", dataDir, "8")
    // The latest status each job was reported written with: the file must hold that one or a later one.
    const reported = new Map<string, Reported>()
    let writes = 0
    const watched = watch(proc, (line) => {
      const m = /^w (job-[0-9a-z]+) (pending|running|completed)$/.exec(line)
      if (m === null) return
      reported.set(m[1]!, m[2] as Reported)
      // Well into the run, while all eight are writing: kill it without warning.
      if (++writes === 3_000) proc.kill("SIGKILL")
    })
    const end = await watched.ended
    expect({ end, stderr: watched.stderr() }).toEqual({ end: { code: null, signal: "SIGKILL" }, stderr: "" })
    expect(writes).toBeGreaterThanOrEqual(3_000)

    const db = new Sqlite(databasePath({ dataDir }))
    let unfinishedInFile: number
    try {
      expect(db.pragma("integrity_check")).toEqual([{ integrity_check: "ok" }])
      const rows = db.prepare("SELECT id, status, job_json FROM jobs").all() as Array<{ id: string; status: Reported; job_json: string }>
      const inFile = new Map(rows.map((r) => [r.id, r]))
      const lost = [...reported].filter(([id, status]) => {
        const row = inFile.get(id)
        return row === undefined || RANK[row.status] < RANK[status] || (JSON.parse(row.job_json) as { status: string }).status !== row.status
      })
      expect(lost).toEqual([])
      unfinishedInFile = rows.filter((r) => r.status !== "completed").length
    } finally {
      db.close()
    }

    // A second process opens the same file, migrates (nothing to do), journals and recovers.
    const second = start("open", dataDir, "after")
    const secondWatched = watch(second)
    await waitFor(secondWatched.lines, "ready", second)
    second.stdin.end("go\n")
    expect({ end: await secondWatched.ended, stderr: secondWatched.stderr() }).toEqual({ end: { code: 0, signal: null }, stderr: "" })
    expect(secondWatched.lines).toEqual(["ready", `ok ${SCHEMA_VERSION} ${unfinishedInFile + 1}`])
  }, 60_000)

  it("four processes opening one fresh file at the same moment all get the journal's schema and can journal", async () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), "plinth-journal-4-")), "data")
    const names = ["a", "b", "c", "d"]
    const lines = await raceOnFreshFile(start, dataDir, names)
    for (const childLines of lines) expect(childLines[0]).toBe("ready")
    // Each recovered at least its own job, and the last to recover all four.
    const seen = lines.map((childLines) => /^ok (\d+) (\d+)$/.exec(childLines[1] ?? ""))
    expect(seen.map((m) => Number(m?.[1]))).toEqual([SCHEMA_VERSION, SCHEMA_VERSION, SCHEMA_VERSION, SCHEMA_VERSION])
    expect(Math.min(...seen.map((m) => Number(m?.[2])))).toBeGreaterThanOrEqual(1)
    expect(Math.max(...seen.map((m) => Number(m?.[2])))).toBe(4)
    const db = new Sqlite(databasePath({ dataDir }), { readonly: true })
    try {
      expect(db.prepare("SELECT max(migration_id) AS v, count(*) AS n FROM plinth_migrations").get()).toEqual({ v: SCHEMA_VERSION, n: SCHEMA_VERSION })
      expect(db.prepare("SELECT id FROM jobs ORDER BY id").all()).toEqual(names.map((n) => ({ id: `job-${n}` })))
    } finally {
      db.close()
    }
  }, 60_000)
})
