import { describe, expect, it } from "vitest"
import fc from "fast-check"
import {
  afterInterruption,
  compareRunOrder,
  insertionIndex,
  isTerminal,
  JobId,
  newSequence,
  priorityProblem,
  runOrder,
  SequenceId,
  sequenceCancelled,
  stepEnded,
  stepStarted,
  timeoutProblem,
  type Job,
  type JobSequence,
  type RunKey,
  type SequenceMode,
  type SequenceStep,
} from "../src/index.js"

/*
 * The pure rules under the job queue: the order pending jobs run in, a
 * sequence's transitions, and what becomes of a job its host stopped.
 */

const keys = fc
  .array(fc.integer({ min: -3, max: 3 }), { maxLength: 40 })
  .map((priorities) => priorities.map((priority, seq) => ({ priority, seq })))

describe("run order", () => {
  it("higher priority first, then first in, first out, whatever order the keys are given in", () => {
    const shuffled = keys.chain((ks) => fc.shuffledSubarray(ks, { minLength: ks.length, maxLength: ks.length }).map((sh) => [ks, sh] as const))
    fc.assert(
      fc.property(shuffled, ([submitted, given]) => {
        const ordered = runOrder(given)
        expect(ordered).toEqual(runOrder(submitted))
        expect(ordered).toHaveLength(submitted.length)
        ordered.forEach((k, i) => {
          if (i > 0) {
            const before = ordered[i - 1]!
            expect(before.priority > k.priority || (before.priority === k.priority && before.seq < k.seq)).toBe(true)
          }
        })
      }),
    )
  })

  it("the example: 0, 10, 10, 5 run as the first 10, the second 10, 5, 0", () => {
    const submitted = [0, 10, 10, 5].map((priority, seq) => ({ priority, seq }))
    expect(runOrder(submitted).map((k) => k.seq)).toEqual([1, 2, 3, 0])
  })

  it("inserting each key where insertionIndex says keeps the list in run order, whatever the arrival order", () => {
    fc.assert(
      fc.property(keys, fc.array(fc.nat(), { maxLength: 40 }), (submitted, swaps) => {
        const arrival = [...submitted]
        swaps.forEach((s, i) => {
          const j = s % Math.max(1, arrival.length)
          const k = i % Math.max(1, arrival.length)
          if (arrival.length > 0) [arrival[j], arrival[k]] = [arrival[k]!, arrival[j]!]
        })
        const list: Array<RunKey> = []
        for (const key of arrival) list.splice(insertionIndex(list, key), 0, key)
        expect(list).toEqual(runOrder(submitted))
      }),
    )
  })

  it("the comparison is a strict total order on distinct submissions", () => {
    fc.assert(
      fc.property(keys, (submitted) => {
        for (const a of submitted)
          for (const b of submitted) {
            if (a === b) expect(compareRunOrder(a, b)).toBe(0)
            else expect(Math.sign(compareRunOrder(a, b))).toBe(-Math.sign(compareRunOrder(b, a)))
          }
      }),
    )
  })

  it("priorities must be safe integers; timeouts finite and above zero", () => {
    fc.assert(fc.property(fc.integer(), (p) => priorityProblem(p) === undefined))
    fc.assert(fc.property(fc.double().filter((d) => !Number.isSafeInteger(d)), (p) => priorityProblem(p) !== undefined))
    for (const bad of ["1", null, undefined, Number.NaN]) expect(priorityProblem(bad)).toBeDefined()
    fc.assert(fc.property(fc.double({ min: Number.MIN_VALUE, max: 1e12, noNaN: true }), (t) => timeoutProblem(t) === undefined))
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) expect(timeoutProblem(bad)).toBeDefined()
  })
})

const step: SequenceStep = { instance: "i", action: "a", input: null }
const outcome = fc.constantFrom("completed" as const, "failed" as const, "cancelled" as const)
const sequenceId = SequenceId.make("seq-test")
const jobId = (n: number) => JobId.make(`job-step${n}`)

/** Runs a sequence to its end with these step outcomes (one per step run), as the queue does. */
const play = (mode: SequenceMode, outcomes: ReadonlyArray<"completed" | "failed" | "cancelled">) => {
  let sequence: JobSequence = newSequence(sequenceId, outcomes.map(() => step), mode, 0, 1)
  let next: number | undefined = outcomes.length > 0 ? 0 : undefined
  const ran: Array<number> = []
  while (next !== undefined) {
    ran.push(next)
    sequence = stepStarted(sequence)
    const advance = stepEnded(sequence, { index: next, job: jobId(next), status: outcomes[next]! }, 2)
    sequence = advance.sequence
    next = advance.next
  }
  return { sequence, ran }
}

describe("sequence state", () => {
  it("best-effort runs every step and ends completed with each outcome in order", () => {
    fc.assert(
      fc.property(fc.array(outcome, { maxLength: 12 }), (outcomes) => {
        const { sequence, ran } = play("bestEffort", outcomes)
        expect(ran).toEqual(outcomes.map((_, i) => i))
        expect(sequence.status).toBe("completed")
        expect(sequence.results.map((r) => r.status)).toEqual(outcomes)
      }),
    )
  })

  it("fail-fast stops at the first step that does not complete: failed (or cancelled), with the results up to it", () => {
    fc.assert(
      fc.property(fc.array(outcome, { maxLength: 12 }), (outcomes) => {
        const { sequence, ran } = play("failFast", outcomes)
        const stop = outcomes.findIndex((o) => o !== "completed")
        const expectedRan = stop < 0 ? outcomes.length : stop + 1
        expect(ran).toHaveLength(expectedRan)
        expect(sequence.results).toHaveLength(expectedRan)
        expect(sequence.status).toBe(stop < 0 ? "completed" : outcomes[stop] === "cancelled" ? "cancelled" : "failed")
        expect(isTerminal(sequence.status)).toBe(true)
        expect(sequence.finishedAt).toBe(stop < 0 && outcomes.length === 0 ? 1 : 2)
      }),
    )
  })

  it("the issue's examples; an empty sequence is completed at once", () => {
    const fast = play("failFast", ["completed", "failed", "completed"])
    expect([fast.sequence.status, fast.sequence.results.length, fast.ran]).toEqual(["failed", 2, [0, 1]])
    const best = play("bestEffort", ["completed", "failed", "completed"])
    expect([best.sequence.status, best.sequence.results.map((r) => r.status)]).toEqual(["completed", ["completed", "failed", "completed"]])
    expect(newSequence(sequenceId, [], "failFast", 0, 5)).toMatchObject({ status: "completed", finishedAt: 5, results: [] })
  })

  it("once cancelled, a sequence runs no further step and only records how its running step ended", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.nat(), outcome, fc.constantFrom<SequenceMode>("failFast", "bestEffort"), (length, at, last, mode) => {
        const current = at % length
        let sequence: JobSequence = { ...newSequence(sequenceId, Array.from({ length }, () => step), mode, 0, 1), status: "running", current }
        sequence = { ...sequence, results: Array.from({ length: current }, (_, i) => ({ index: i, job: jobId(i), status: "completed" as const })) }
        const cancelled = sequenceCancelled(sequence, 3)
        expect(cancelled).toMatchObject({ status: "cancelled", finishedAt: 3 })
        const advance = stepEnded(cancelled, { index: current, job: jobId(current), status: last }, 4)
        expect(advance.next).toBeUndefined()
        expect(advance.sequence.status).toBe("cancelled")
        expect(advance.sequence.results).toHaveLength(current + 1)
        // A second report of the same step, or one for another step, changes nothing.
        expect(stepEnded(advance.sequence, { index: current, job: jobId(current), status: last }, 5).sequence).toEqual(advance.sequence)
        expect(sequenceCancelled(advance.sequence, 9)).toEqual(advance.sequence)
      }),
    )
  })
})

const job = (status: Job["status"], key?: string): Job => ({
  id: JobId.make("job-x"),
  instance: "inst",
  action: "act",
  input: null,
  priority: 0,
  status,
  submittedAt: 1,
  progress: 0.5,
  retryCount: 1,
  ...(status === "running" ? { startedAt: 2, statusMessage: "half", cancelPhase: "cooperative" as const } : {}),
  ...(key !== undefined ? { idempotencyKey: key } : {}),
})

describe("after an interruption", () => {
  it("a running job with a key is pending again with its run state cleared; without one it fails with JobInterrupted; a pending one stays", () => {
    const requeued = afterInterruption(job("running", "k"), "plug", 9)
    expect(requeued._tag).toBe("requeue")
    expect(requeued.job).toMatchObject({ status: "pending", progress: -1, idempotencyKey: "k", retryCount: 1 })
    expect(requeued.job.startedAt).toBeUndefined()
    expect(requeued.job.cancelPhase).toBeUndefined()
    const failed = afterInterruption(job("running"), "plug", 9)
    expect(failed._tag).toBe("failed")
    expect(failed.job).toMatchObject({ status: "failed", finishedAt: 9 })
    expect(failed.job.error).toMatchObject({ tag: "JobInterrupted", category: "transient", retriable: false, plugin: "plug", instance: "inst" })
    expect(failed.job.error?.time.getTime()).toBe(9)
    const pending = job("pending")
    expect(afterInterruption(pending, "plug", 9)).toEqual({ _tag: "requeue", job: pending })
  })
})
