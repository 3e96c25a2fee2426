import { spawn } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import Sqlite from "better-sqlite3"
import { describe, expect, it } from "vitest"
import { databasePath, SCHEMA_VERSION } from "@plinth/runtime"
import { raceOnFreshFile, watch } from "./childLines.js"

const child = join(import.meta.dirname, "fixtures", "storeChild.mjs")
const start = (...args: Array<string>) => spawn(process.execPath, [child, ...args], { stdio: ["pipe", "pipe", "pipe"] })

describe("the database shared by processes", () => {
  it("four processes opening one fresh file at the same moment all migrate it to the schema version and can write", async () => {
    for (let round = 0; round < 2; round++) {
      const dataDir = join(mkdtempSync(join(tmpdir(), "plinth-stores-4-")), "data")
      const names = ["a", "b", "c", "d"].map((n) => `p-${round}-${n}`)
      const lines = await raceOnFreshFile(start, dataDir, names)
      for (const childLines of lines) expect(childLines).toEqual(["ready", `ok ${SCHEMA_VERSION}`])
      const db = new Sqlite(databasePath({ dataDir }), { readonly: true })
      try {
        expect(db.prepare("SELECT max(migration_id) AS v, count(*) AS n FROM plinth_migrations").get()).toEqual({ v: SCHEMA_VERSION, n: SCHEMA_VERSION })
        expect(db.prepare("SELECT plugin FROM plugin_configs ORDER BY plugin").all()).toEqual(names.map((plugin) => ({ plugin })))
      } finally {
        db.close()
      }
    }
  }, 60_000)

  it("kill -9 in the middle of 10,000 writes leaves an intact file and every committed row", async () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), "plinth-stores-kill-")), "data")
    const proc = start("write", dataDir, "10000", "50")
    let committed = -1
    const watched = watch(proc, (line) => {
      const m = /^committed (\d+) (\d+)$/.exec(line)
      if (m === null) return
      committed = Number(m[2])
      // Well into the run, while it is still writing: kill it without warning.
      if (committed >= 2_999 && proc.exitCode === null && !proc.killed) proc.kill("SIGKILL")
    })
    const end = await watched.ended
    expect({ end, stderr: watched.stderr() }).toEqual({ end: { code: null, signal: "SIGKILL" }, stderr: "" })
    expect(committed).toBeGreaterThanOrEqual(2_999)
    expect(committed).toBeLessThan(9_999)

    const db = new Sqlite(databasePath({ dataDir }))
    try {
      expect(db.pragma("integrity_check")).toEqual([{ integrity_check: "ok" }])
      const present = new Set((db.prepare("SELECT plugin FROM empirical_records").all() as Array<{ plugin: string }>).map((r) => r.plugin))
      const lost = Array.from({ length: committed + 1 }, (_, i) => `row-${i}`).filter((p) => !present.has(p))
      expect(lost).toEqual([])
      expect(db.prepare("SELECT sum(calls) AS n FROM empirical_records").get()).toEqual({ n: present.size })
    } finally {
      db.close()
    }
  }, 60_000)

  it("two processes writing one record at once lose none of each other's samples", async () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), "plinth-stores-2w-")), "data")
    const writers = [0, 1].map(() => watch(start("write", dataDir, "2000", "100", "shared")))
    const ends = await Promise.all(writers.map((w) => w.ended))
    ends.forEach((end, i) => expect({ end, stderr: writers[i]!.stderr() }).toEqual({ end: { code: 0, signal: null }, stderr: "" }))
    const db = new Sqlite(databasePath({ dataDir }), { readonly: true })
    try {
      // Each wrote wall times 0..1999: 4,000 calls with mean 999.5, whatever the interleaving of their batches.
      const row = db.prepare("SELECT calls, successes, wall_count, wall_mean, wall_max FROM empirical_records WHERE plugin = 'shared'").get()
      expect(row).toEqual({ calls: 4_000, successes: 4_000, wall_count: 4_000, wall_mean: expect.closeTo(999.5, 9), wall_max: 1_999 })
    } finally {
      db.close()
    }
  }, 60_000)
})
