import { execFileSync } from "node:child_process"
import { cpSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { type Duration, Effect, Layer, type Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Job, JobId } from "@plinth/domain"
import { JobQueueClusterClient } from "@plinth/cluster"
import { JobQueue } from "@plinth/runtime"
import { plinth } from "./support/cli.js"
import { startRunner, type RunnerProcess } from "./support/cluster.js"
import { tempDir } from "./support/plugins.js"
import { startPostgres, type TestPostgres } from "./support/postgres.mjs"
import { tallyWorkspace } from "./support/tallyPlugin.js"

/*
 * Issue 10 §4, with real processes: three runners and a Postgres on
 * 127.0.0.1. `kill -9` of a runner in the middle of 300 jobs loses none and
 * records each result once; a Postgres restart in the middle of a run only
 * pauses it; a runner with tampered plugins never joins.
 */

let pg: TestPostgres
let database: string
let workspace: { dir: string; root: string; lock: string }
const runners: Array<RunnerProcess> = []
let client: Layer.Layer<JobQueue, unknown>

const run = <A, E>(effect: Effect.Effect<A, E, JobQueue | Scope.Scope>, timeout: Duration.DurationInput = "120 seconds") =>
  Effect.runPromise(effect.pipe(Effect.provide(client), Effect.scoped, Effect.timeout(timeout)) as Effect.Effect<A, unknown>)

const psql = (statement: string): string => execFileSync("psql", ["-At", database, "-c", statement], { encoding: "utf8" }).trim()

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

const waitUntil = async (check: () => boolean, millis: number, what: string) => {
  const deadline = Date.now() + millis
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

const submitTicks = (prefix: string, count: number, millis: number) =>
  Effect.flatMap(JobQueue, (queue) =>
    Effect.forEach(
      Array.from({ length: count }, (_, i) => i),
      (i) => queue.submit({ instance: "tally", action: "tick", input: { key: `${prefix}${i}`, millis }, idempotencyKey: `${prefix}${i}` }),
      { concurrency: 16 },
    ),
  )

const waitAll = (ids: ReadonlyArray<JobId>) => Effect.flatMap(JobQueue, (queue) => Effect.forEach(ids, queue.wait, { concurrency: 64 }))

const completedCount = (prefix: string) => Number(psql(`SELECT count(*) FROM plinth_jobs WHERE status = 'completed' AND job->'input'->>'key' LIKE '${prefix}%'`))

beforeAll(async () => {
  pg = await startPostgres()
  database = pg.createDatabase("cluster_faults")
  workspace = await tallyWorkspace("plinth-cluster-faults-")
  const start = () => startRunner({ root: workspace.root, lock: workspace.lock, database, concurrency: 8, plugins: ["tally"] })
  // The first alone, then two together: what is tested here is faults, not the first start on an empty database.
  runners.push(start())
  expect(await runners[0]!.started).toEqual({ _tag: "ready" })
  runners.push(start(), start())
  for (const runner of runners) expect(await runner.started).toEqual({ _tag: "ready" })
  client = JobQueueClusterClient({ database })
}, 120_000)

afterAll(async () => {
  for (const runner of runners) runner.kill("SIGKILL")
  await Promise.all(runners.map((runner) => runner.exited))
  pg?.stop()
})

describe("a cluster of three runners, under faults", () => {
  it("kill -9 of one runner during 300 jobs: no job lost, every result recorded exactly once, the dead runner's jobs finished elsewhere (or failed JobInterrupted without a key)", async () => {
    const ids = await run(submitTicks("k", 300, 100))
    // Three long jobs without an idempotency key, ahead of the rest on each runner: whichever the dead runner was running must not run again.
    const unkeyed = await run(
      Effect.flatMap(JobQueue, (queue) =>
        Effect.forEach([0, 1, 2], (i) => queue.submit({ instance: "tally", action: "tick", input: { key: `u${i}`, millis: 6_000 }, priority: 10 })),
      ),
    )
    await waitUntil(() => completedCount("k") >= 30 && psql(`SELECT count(*) FROM plinth_jobs WHERE status = 'running' AND job->'input'->>'key' LIKE 'u%'`) !== "0", 60_000, "30 jobs to complete and an unkeyed one to run")
    // A runner running one of the unkeyed jobs, the busiest of those, as the database says.
    const busiest = psql(
      `SELECT runner FROM plinth_jobs WHERE status = 'running' AND runner IN (SELECT runner FROM plinth_jobs WHERE status = 'running' AND job->'input'->>'key' LIKE 'u%') GROUP BY runner ORDER BY count(*) DESC LIMIT 1`,
    )
    const unkeyedOnVictim = psql(`SELECT id FROM plinth_jobs WHERE status = 'running' AND runner = '${busiest}' AND job->'input'->>'key' LIKE 'u%'`)
      .split("\n")
      .filter((id) => id !== "")
    const victim = runners.find((runner) => `127.0.0.1:${runner.port}` === busiest)!
    expect(victim, `no runner is ${busiest}`).toBeDefined()
    // Its jobs, running or queued there: the runner's own queue journals them with its name.
    const inFlight = psql(`SELECT id FROM plinth_jobs WHERE runner = '${busiest}' AND status IN ('pending', 'running') AND job->'input'->>'key' LIKE 'k%'`).split("\n").filter((id) => id !== "")
    const killedAt = Date.now()
    victim.kill("SIGKILL")
    expect((await victim.exited).signal).toBe("SIGKILL")

    const jobs: ReadonlyArray<Job> = await run(waitAll(ids))
    expect(jobs).toHaveLength(300)
    expect(jobs.filter((job) => job.status !== "completed").map((job) => [job.id, job.status, job.error?.message])).toEqual([])
    // Each job answered with its own key, and no two recorded results came from one run.
    expect(jobs.every((job) => (job.result as { key: string }).key === (job.input as { key: string }).key)).toBe(true)
    const runsRecorded = new Set(jobs.map((job) => `${(job.result as { worker: string }).worker}#${(job.result as { run: number }).run}`))
    expect(runsRecorded.size).toBe(300)
    expect(Number(psql(`SELECT count(*) FROM plinth_jobs WHERE job->'input'->>'key' LIKE 'k%'`))).toBe(300)
    // The jobs the dead runner held (and had not finished before it died) were run by the survivors; the running ones again, since their keys allow it.
    const byId = new Map(jobs.map((job) => [job.id as string, job]))
    const rerun = inFlight.map((id) => byId.get(id)!).filter((job) => job.finishedAt! > killedAt)
    expect(rerun.length).toBeGreaterThan(0)
    const rerunBy = new Set(rerun.map((job) => psql(`SELECT runner FROM plinth_jobs WHERE id = '${job.id}'`)))
    expect(rerunBy.has(busiest)).toBe(false)
    const failover = Math.min(...rerun.map((job) => job.finishedAt! - killedAt))
    const allMoved = Math.max(...rerun.map((job) => job.finishedAt! - killedAt))
    console.log(`cluster failover: the first of the dead runner's ${rerun.length} unfinished jobs finished elsewhere ${failover} ms after kill -9, the last ${allMoved} ms after`)
    expect(failover).toBeLessThan(30_000)
    // Without a key, a job the dead runner was running ends failed, JobInterrupted, as on a single host; the others ran.
    const unkeyedEnds: ReadonlyArray<Job> = await run(waitAll(unkeyed))
    expect(unkeyedOnVictim.length).toBeGreaterThan(0)
    for (const job of unkeyedEnds) {
      if (unkeyedOnVictim.includes(job.id)) expect([job.status, job.error?.tag]).toEqual(["failed", "JobInterrupted"])
      else expect(job.status).toBe("completed")
    }
  }, 180_000)

  it("a sequence goes on when the runner running its step is killed: the keyed step runs again elsewhere, the later steps follow", async () => {
    const steps = [0, 1, 2].map((i) => ({ instance: "tally", action: "tick", input: { key: `seq${i}`, millis: 1_500 }, idempotencyKey: `seq-step-${i}` }))
    const id = await run(Effect.flatMap(JobQueue, (queue) => queue.submitSequence(steps)))
    const secondStep = `job-${id.slice(4)}s1`
    await waitUntil(() => psql(`SELECT status FROM plinth_jobs WHERE id = '${secondStep}'`) === "running", 60_000, "the second step to run")
    const holder = psql(`SELECT runner FROM plinth_jobs WHERE id = '${secondStep}'`)
    const victim = runners.find((runner) => `127.0.0.1:${runner.port}` === holder)!
    victim.kill("SIGKILL")
    await victim.exited
    const ended = await run(Effect.flatMap(JobQueue, (queue) => queue.waitSequence(id)))
    expect(ended.status).toBe("completed")
    expect(ended.results.map((result) => [result.status, (result.result as { key: string }).key])).toEqual([
      ["completed", "seq0"],
      ["completed", "seq1"],
      ["completed", "seq2"],
    ])
    expect(psql(`SELECT runner FROM plinth_jobs WHERE id = '${secondStep}'`)).not.toBe(holder)
    // A runner back in place of the dead one, for the tests after this one.
    const replacement = startRunner({ root: workspace.root, lock: workspace.lock, database, concurrency: 8, plugins: ["tally"] })
    runners.splice(runners.indexOf(victim), 1, replacement)
    expect(await replacement.started).toEqual({ _tag: "ready" })
  }, 120_000)

  it("a Postgres restart in the middle of a run pauses it: every job still completes", async () => {
    const ids = await run(submitTicks("r", 100, 40))
    await waitUntil(() => completedCount("r") >= 20, 60_000, "20 jobs to complete")
    await pg.restart({ downMillis: 2_000 })
    const jobs: ReadonlyArray<Job> = await run(waitAll(ids), "150 seconds")
    expect(jobs.filter((job) => job.status !== "completed").map((job) => [job.id, job.status, job.error?.message])).toEqual([])
    expect(new Set(jobs.map((job) => `${(job.result as { worker: string }).worker}#${(job.result as { run: number }).run}`)).size).toBe(100)
  }, 180_000)

  it("a runner whose plugin was tampered with never joins: against the lock it fails verification, re-locked it is refused with both digests", async () => {
    const tampered = tempDir("plinth-cluster-tampered-")
    cpSync(workspace.dir, tampered, { recursive: true })
    const entry = join(tampered, "plugins", "tally", "index.js")
    writeFileSync(entry, readFileSync(entry, "utf8").replace("let runs = 0", "let runs = 1000"))

    const unverified = startRunner({ root: join(tampered, "plugins"), lock: join(tampered, "PLUGINS.lock"), database, plugins: ["tally"] })
    const refusedUnverified = await unverified.started
    expect(refusedUnverified._tag).toBe("refused")
    expect(JSON.stringify(refusedUnverified)).toMatch(/tally/)
    expect((await unverified.exited).code).toBe(3)

    const relocked = await plinth(tampered, ["plugins", "lock"])
    expect(relocked.code, relocked.stderr).toBe(0)
    const other = startRunner({ root: join(tampered, "plugins"), lock: join(tampered, "PLUGINS.lock"), database, plugins: ["tally"] })
    const refused = await other.started
    expect((await other.exited).code).toBe(3)
    const clusterDigest = psql(`SELECT DISTINCT code_digest FROM plinth_runners WHERE heartbeat_at > ${Date.now() - 15_000}`)
    expect(refused).toMatchObject({ _tag: "refused", error: { _tag: "ClusterLockMismatch", clusterDigest } })
    const error = (refused as unknown as { error: { runnerDigest: string; message: string } }).error
    expect(error.runnerDigest).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(error.runnerDigest).not.toBe(clusterDigest)
    expect(error.message).toContain(error.runnerDigest)
    expect(error.message).toContain(clusterDigest)
    // It took no shard and ran nothing: the cluster's jobs still run on the others, and none on it.
    const [job] = await run(Effect.flatMap(submitTicks("after", 1, 0), waitAll))
    expect(job!.status).toBe("completed")
    expect((job!.result as { run: number }).run).toBeLessThan(1000)
  }, 120_000)
})
