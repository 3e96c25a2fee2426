import { execFileSync } from "node:child_process"
import { Duration, Effect, Layer, Option, Stream, type Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Job, JobEvent, JobId } from "@plinth/domain"
import { JobQueueClusterClient } from "@plinth/cluster"
import { JobQueue } from "@plinth/runtime"
import { startRunner, type RunnerProcess } from "./support/cluster.js"
import { startPostgres, type TestPostgres } from "./support/postgres.mjs"
import { tallyWorkspace } from "./support/tallyPlugin.js"

/*
 * Issue 10, one runner: the JobQueue a client of the cluster gets is the
 * single-host one for its callers (submit, wait, get, lists, stats, cancel,
 * reorder, logs, events, idempotency keys), run by a real runner process
 * over a real Postgres, and a job delivered again after its result was
 * recorded is answered from the record, not run again.
 */

let pg: TestPostgres
let database: string
let runner: RunnerProcess
let client: Layer.Layer<JobQueue, unknown>

const run = <A, E>(effect: Effect.Effect<A, E, JobQueue | Scope.Scope>) =>
  Effect.runPromise(effect.pipe(Effect.provide(client), Effect.scoped, Effect.timeout("60 seconds")) as Effect.Effect<A, unknown>)

const tick = (key: string, millis = 0) => ({ instance: "tally", action: "tick", input: { key, millis } })

beforeAll(async () => {
  pg = await startPostgres()
  database = pg.createDatabase("cluster_one")
  const workspace = await tallyWorkspace()
  // One job at a time, so that a second job waits pending behind a first.
  runner = startRunner({ root: workspace.root, lock: workspace.lock, database, concurrency: 1, plugins: ["tally", "showcase"] })
  expect(await runner.started).toEqual({ _tag: "ready" })
  client = JobQueueClusterClient({ database })
}, 90_000)

afterAll(async () => {
  runner?.kill("SIGTERM")
  await runner?.exited
  pg?.stop()
})

describe("the job queue on a cluster, seen from a client", () => {
  it("runs submitted jobs on the runner; wait, get, history and stats read the shared record", async () => {
    const jobs = await run(
      Effect.gen(function* () {
        const queue = yield* JobQueue
        const ids = yield* Effect.forEach(["a", "b", "c"], (key) => queue.submit(tick(key)))
        const done = yield* Effect.forEach(ids, (id) => queue.wait(id), { concurrency: "unbounded" })
        const got = yield* queue.get(ids[0]!)
        const history = yield* queue.history()
        const stats = yield* queue.stats
        return { done, got, history, stats, ids }
      }),
    )
    expect(jobs.done.map((job) => [job.status, (job.result as { key: string }).key])).toEqual([
      ["completed", "a"],
      ["completed", "b"],
      ["completed", "c"],
    ])
    expect(Option.getOrThrow(jobs.got)).toEqual(jobs.done[0])
    expect(jobs.history.slice(0, 3).map((job) => job.id).sort()).toEqual([...jobs.ids].sort())
    expect(jobs.stats).toMatchObject({ pending: 0, running: 0 })
    expect(jobs.stats.completed).toBeGreaterThanOrEqual(3)
  })

  it("refuses what one host refuses (a bad priority, input JSON cannot carry), and fails a job for an instance no runner has loaded with a one-line JobRefused", async () => {
    const outcome = await run(
      Effect.gen(function* () {
        const queue = yield* JobQueue
        const badPriority = yield* Effect.flip(queue.submit({ ...tick("x"), priority: 1.5 }))
        const badInput = yield* Effect.flip(queue.submit({ instance: "tally", action: "tick", input: { key: "x", millis: Number.NaN } }))
        const unknown = yield* queue.wait(yield* queue.submit({ instance: "nowhere", action: "tick", input: {} }))
        return { badPriority, badInput, unknown }
      }),
    )
    expect(outcome.badPriority._tag).toBe("JobRefused")
    expect(outcome.badInput.message).toMatch(/not a JSON value/)
    expect(outcome.unknown.status).toBe("failed")
    expect(outcome.unknown.error).toMatchObject({ tag: "JobRefused" })
    expect(outcome.unknown.error?.message).toMatch(/instance 'nowhere' is not loaded.*on runner 127\.0\.0\.1:/)
    expect(outcome.unknown.error?.message).not.toContain("\n")
  })

  it("an idempotency key already known returns the first job's id", async () => {
    const [first, second] = await run(
      Effect.gen(function* () {
        const queue = yield* JobQueue
        const first = yield* queue.submit({ ...tick("keyed"), idempotencyKey: "cluster-key-1" })
        const second = yield* queue.submit({ ...tick("keyed"), idempotencyKey: "cluster-key-1" })
        yield* queue.wait(first)
        return [first, second]
      }),
    )
    expect(second).toBe(first)
  })

  it("cancels a pending job before it runs (it never runs) and a running one; a finished job's cancel is false", async () => {
    const outcome = await run(
      Effect.gen(function* () {
        const queue = yield* JobQueue
        const blocker = yield* queue.submit(tick("blocker", 60_000))
        yield* waitForStatus(blocker, "running")
        const queued = yield* queue.submit(tick("queued"))
        const reordered = yield* queue.reorder(queued, 7)
        const cancelledPending = yield* queue.cancel(queued)
        const cancelledRunning = yield* queue.cancel(blocker)
        const queuedEnd = yield* queue.wait(queued)
        const blockerEnd = yield* queue.wait(blocker)
        const again = yield* queue.cancel(blocker)
        return { reordered, cancelledPending, cancelledRunning, queuedEnd, blockerEnd, again }
      }),
    )
    expect(outcome).toMatchObject({ reordered: true, cancelledPending: true, cancelledRunning: true, again: false })
    expect(outcome.queuedEnd).toMatchObject({ status: "cancelled", priority: 7 })
    expect(outcome.queuedEnd.startedAt).toBeUndefined()
    expect(outcome.blockerEnd.status).toBe("cancelled")
  })

  it("a client subscribed to all events hears a job submitted, running and completed on the runner; one job's stream ends with it", async () => {
    const outcome = await run(
      Effect.gen(function* () {
        const queue = yield* JobQueue
        const subscription = yield* queue.subscribe({ _tag: "all" }, { buffer: 1000 })
        const id = yield* queue.submit(tick("watched", 200))
        const own = yield* Effect.fork(Stream.runCollect(queue.events(id)))
        yield* queue.wait(id)
        const mine = Array.from(yield* own.await.pipe(Effect.flatten))
        const heard: Array<JobEvent> = []
        yield* subscription.events.pipe(
          Stream.tap((event) => Effect.sync(() => heard.push(event))),
          Stream.takeUntil((event) => event.job === id && event._tag === "stateChanged" && event.to === "completed"),
          Stream.runDrain,
          Effect.timeout("10 seconds"),
        )
        return { id, mine, heard: heard.filter((event) => event.job === id) }
      }),
    )
    const steps = (events: ReadonlyArray<JobEvent>) => events.map((event) => (event._tag === "stateChanged" ? `${event.from}->${event.to}` : event._tag))
    expect(steps(outcome.heard)).toEqual(expect.arrayContaining(["submitted", "pending->running", "running->completed"]))
    expect(steps(outcome.mine).at(-1)).toBe("running->completed")
  })

  it("a job delivered again after its result was recorded is answered from the record, not run again", async () => {
    const first = await run(Effect.flatMap(JobQueue, (queue) => Effect.flatMap(queue.submit(tick("once")), queue.wait)))
    const { run: runsBefore, worker } = first.result as { run: number; worker: string }
    // As if the runner had died after recording the result and before its reply was stored: the message is delivered again.
    const runMessage = `entity_type = 'PlinthJob' AND tag = 'Run' AND payload LIKE '%${first.id}%'`
    psql(`DELETE FROM cluster_replies WHERE request_id IN (SELECT request_id FROM cluster_messages WHERE ${runMessage})`)
    psql(`UPDATE cluster_messages SET processed = false, reply_id = NULL, last_reply_id = NULL, last_read = NULL WHERE ${runMessage}`)
    await waitUntil(() => psql(`SELECT count(*) FROM cluster_replies r JOIN cluster_messages m ON r.request_id = m.request_id WHERE ${runMessage.replaceAll("entity_type", "m.entity_type").replaceAll(" tag", " m.tag").replaceAll("payload", "m.payload")}`) !== "0")
    const next = await run(Effect.flatMap(JobQueue, (queue) => Effect.flatMap(queue.submit(tick("next")), queue.wait)))
    // The same worker ran exactly one more tick: the delivered-again job was not one.
    expect(next.result).toMatchObject({ worker, run: runsBefore + 1 })
    const recorded = await run(Effect.flatMap(JobQueue, (queue) => queue.get(first.id)))
    expect(Option.getOrThrow(recorded)).toEqual(first)
  })
})

describe("a runner's environment", () => {
  it("does not configure the cluster: a second runner with PORT, HOST and SHARDS_PER_GROUP set joins and takes its share of the 300 shards", async () => {
    const workspace = await tallyWorkspace("plinth-cluster-env-")
    const second = startRunner({
      root: workspace.root,
      lock: workspace.lock,
      database,
      plugins: ["tally", "showcase"],
      env: { PORT: "not-a-port", HOST: "nowhere.invalid", SHARDS_PER_GROUP: "7" },
    })
    try {
      expect(await second.started).toEqual({ _tag: "ready" })
      // It takes its share of the cluster's 300 shards (each an advisory lock held on its connections), not a share of 7.
      const shardsHeld = () =>
        Number(
          psql(
            `SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND a.application_name = 'plinth runner 127.0.0.1:${second.port}'`,
          ),
        )
      const deadline = Date.now() + 45_000
      while (shardsHeld() < 100 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200))
      expect(shardsHeld()).toBeGreaterThanOrEqual(100)
      const jobs = await run(
        Effect.flatMap(JobQueue, (queue) =>
          Effect.forEach(Array.from({ length: 8 }, (_, i) => i), (i) => Effect.flatMap(queue.submit(tick(`env${i}`)), queue.wait), { concurrency: 8 }),
        ),
      )
      expect(jobs.every((job) => job.status === "completed")).toBe(true)
    } finally {
      second.kill("SIGTERM")
      await second.exited
    }
  }, 90_000)
})

describe("sequences on a cluster", () => {
  const fail = { instance: "showcase", action: "fail", input: { category: "input" } }

  it("fail-fast stops at the failing step (two results, the third never runs); best-effort runs all three: completed, failed, completed", async () => {
    const [failFast, bestEffort] = await run(
      Effect.gen(function* () {
        const queue = yield* JobQueue
        const steps = [tick("s1"), fail, tick("s3")]
        const a = yield* queue.submitSequence(steps, { mode: "failFast" })
        const b = yield* queue.submitSequence(steps, { mode: "bestEffort" })
        return [yield* queue.waitSequence(a), yield* queue.waitSequence(b)]
      }),
    )
    expect(failFast.status).toBe("failed")
    expect(failFast.results.map((r) => r.status)).toEqual(["completed", "failed"])
    expect(bestEffort.status).toBe("completed")
    expect(bestEffort.results.map((r) => r.status)).toEqual(["completed", "failed", "completed"])
    // The third step of the fail-fast sequence has no job at all: it never ran.
    const third = await run(Effect.flatMap(JobQueue, (queue) => queue.get(`job-${failFast.id.slice(4)}s2` as JobId)))
    expect(Option.isNone(third)).toBe(true)
  })

  it("cancelling during step 1 ends the sequence cancelled and step 2 never runs; an empty sequence completes at once", async () => {
    const outcome = await run(
      Effect.gen(function* () {
        const queue = yield* JobQueue
        const id = yield* queue.submitSequence([tick("long", 60_000), tick("never")])
        const events = yield* Effect.fork(Stream.runCollect(queue.sequenceEvents(id).pipe(Stream.takeUntil((e) => e._tag === "sequenceAdvanced"))))
        const firstStep = `job-${id.slice(4)}s0` as JobId
        yield* waitForStatus(firstStep, "running")
        const cancelled = yield* queue.cancelSequence(id)
        const ended = yield* queue.waitSequence(id)
        const heard = Array.from(yield* Effect.flatten(events.await))
        const empty = yield* queue.waitSequence(yield* queue.submitSequence([]))
        const second = yield* queue.get(`job-${id.slice(4)}s1` as JobId)
        return { cancelled, ended, heard, empty, second }
      }),
    )
    expect(outcome.cancelled).toBe(true)
    expect(outcome.ended.status).toBe("cancelled")
    expect(outcome.ended.results.map((r) => r.status)).toEqual(["cancelled"])
    expect(Option.isNone(outcome.second)).toBe(true)
    expect(outcome.heard.every((event) => event.sequence === outcome.ended.id)).toBe(true)
    expect(outcome.heard.map((event) => event._tag)).toContain("sequenceAdvanced")
    expect(outcome.empty).toMatchObject({ status: "completed", results: [] })
  })
})

const waitForStatus = (id: JobId, status: Job["status"]) =>
  Effect.gen(function* () {
    const queue = yield* JobQueue
    for (;;) {
      const job = yield* queue.get(id)
      if (Option.isSome(job) && job.value.status === status) return job.value
      yield* Effect.sleep(Duration.millis(50))
    }
  })

const psql = (statement: string): string => execFileSync("psql", ["-At", database, "-c", statement], { encoding: "utf8" }).trim()

const waitUntil = async (check: () => boolean, millis = 20_000) => {
  const deadline = Date.now() + millis
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out")
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}
