import { describe, expect, it } from "vitest"
import fc from "fast-check"
import {
  chooseEvictions,
  decideAdmission,
  defaultBudgetMiB,
  expectedMiB,
  type Candidate,
  type ExpectedMemory,
  type RunningInstance,
  type SchedulingPolicy,
} from "@plinth/domain"

// Memory in sixteenths of a MiB: fractional like a measured peak, yet every sum
// is exact in floating point, so "fits" means the same here and in the code.
const mib = fc.integer({ min: 0, max: 16 * 4096 }).map((n) => n / 16)

// Few plugins, few last-use times and few costs: ties and siblings are common.
const plugin = fc.constantFrom("alpha", "beta", "gamma", "delta")
const running = fc
  .uniqueArray(
    fc.record({
      instance: fc.stringMatching(/^[a-z]{1,3}$/),
      plugin,
      costMiB: fc.oneof(mib, fc.constantFrom(0, 128, 256, 512)),
      lastUsed: fc.integer({ min: 0, max: 8 }),
      inFlight: fc.oneof({ arbitrary: fc.constant(0), weight: 3 }, { arbitrary: fc.integer({ min: 1, max: 4 }), weight: 1 }),
    }),
    { selector: (r) => r.instance, maxLength: 10 },
  )
  .map((rs): ReadonlyArray<RunningInstance> => rs)

const expected: fc.Arbitrary<ExpectedMemory> = fc.oneof(
  mib.map((m) => ({ _tag: "Declared" as const, mib: m })),
  mib.map((m) => ({ _tag: "Measured" as const, mib: m })),
  fc.constant({ _tag: "Unknown" as const }),
)

/** A candidate, sometimes with the id of a running instance (a reload). */
const scene = running.chain((rs) =>
  fc.record({
    running: fc.constant(rs),
    candidate: fc.record({
      instance: rs.length > 0 ? fc.oneof(fc.constantFrom(...rs.map((r) => r.instance)), fc.constant("new")) : fc.constant("new"),
      plugin,
      expected,
    }) as fc.Arbitrary<Candidate>,
    budgetMiB: fc.oneof(mib, fc.constantFrom(0, 1024, 2048)),
    policy: fc.constantFrom<SchedulingPolicy>("permissive", "safety", "queue"),
  }),
)

const sum = (rs: ReadonlyArray<RunningInstance>) => rs.reduce((t, r) => t + r.costMiB, 0)

/** What the candidate shares the budget with: every running instance except the one it replaces. */
const othersOf = (s: { running: ReadonlyArray<RunningInstance>; candidate: Candidate }) => s.running.filter((r) => r.instance !== s.candidate.instance)

const fitsWithout = (s: { running: ReadonlyArray<RunningInstance>; candidate: Candidate; budgetMiB: number }, evicted: ReadonlyArray<string>) =>
  sum(othersOf(s).filter((r) => !evicted.includes(r.instance))) + expectedMiB(s.candidate.expected) <= s.budgetMiB

const shuffled = <A>(items: ReadonlyArray<A>) => fc.shuffledSubarray([...items], { minLength: items.length, maxLength: items.length })

describe("admission (decideAdmission)", () => {
  it("permissive always admits", () => {
    fc.assert(
      fc.property(scene, (s) => {
        expect(decideAdmission({ ...s, policy: "permissive" })).toEqual({ _tag: "Admit" })
      }),
    )
  })

  it("never evicts a busy instance, nor the instance being started, nor one that is not running", () => {
    fc.assert(
      fc.property(scene, (s) => {
        const decision = decideAdmission(s)
        if (decision._tag !== "Evict") return
        expect(decision.instances.length).toBeGreaterThan(0)
        for (const id of decision.instances) {
          const victim = s.running.find((r) => r.instance === id)
          expect(victim).toBeDefined()
          expect(victim!.inFlight).toBe(0)
          expect(id).not.toBe(s.candidate.instance)
        }
        expect(new Set(decision.instances).size).toBe(decision.instances.length)
      }),
      { numRuns: 500 },
    )
  })

  it("never exceeds the budget when it admits, counting the evictions", () => {
    fc.assert(
      fc.property(scene, (s) => {
        const decision = decideAdmission(s)
        if (s.policy === "permissive") return
        if (decision._tag === "Admit") expect(fitsWithout(s, [])).toBe(true)
        if (decision._tag === "Evict") {
          expect(fitsWithout(s, decision.instances)).toBe(true)
          expect(decision.freedMiB).toBe(sum(s.running.filter((r) => decision.instances.includes(r.instance))))
        }
      }),
      { numRuns: 500 },
    )
  })

  it("evicts no more than needed: without any one of the evicted instances it would not fit, and nothing when it fits already", () => {
    fc.assert(
      fc.property(scene, (s) => {
        const decision = decideAdmission(s)
        if (decision._tag !== "Evict") return
        expect(fitsWithout(s, [])).toBe(false)
        for (const spared of decision.instances) expect(fitsWithout(s, decision.instances.filter((id) => id !== spared))).toBe(false)
      }),
      { numRuns: 500 },
    )
  })

  it("refuses (safety) or waits (queue) only when even evicting every idle instance would not make it fit", () => {
    fc.assert(
      fc.property(scene, (s) => {
        const decision = decideAdmission(s)
        if (decision._tag !== "Refuse" && decision._tag !== "Wait") return
        const idle = othersOf(s).filter((r) => r.inFlight === 0).map((r) => r.instance)
        expect(fitsWithout(s, idle)).toBe(false)
        if (decision._tag === "Wait") expect(s.policy).toBe("queue")
        if (decision._tag === "Refuse" && s.policy === "queue") {
          // The queue refuses only what can never fit: waiting would only end in a timeout.
          expect(decision.reason).toEqual({ _tag: "LargerThanBudget", expectedMiB: expectedMiB(s.candidate.expected), budgetMiB: s.budgetMiB })
        }
        if (decision.reason._tag === "BusyInstancesHoldMemory") {
          const busy = othersOf(s).filter((r) => r.inFlight > 0)
          expect(decision.reason.busy).toEqual(busy.map((r) => r.instance).sort())
          expect(decision.reason.busyMiB).toBe(sum(busy))
          expect(decision.reason.inUseMiB).toBe(sum(othersOf(s)))
        }
      }),
      { numRuns: 500 },
    )
  })

  it("is deterministic: the same inputs, in any order, give the same decision", () => {
    fc.assert(
      fc.property(
        scene.chain((s) => fc.tuple(fc.constant(s), shuffled(s.running))),
        ([s, reordered]) => {
          const decision = decideAdmission(s)
          expect(decideAdmission(s)).toEqual(decision)
          expect(decideAdmission({ ...s, running: reordered })).toEqual(decision)
        },
      ),
      { numRuns: 300 },
    )
  })
})

/** A failure to retry after eviction: an instance, often a running one, and a policy. */
const retryScene = running.chain((rs) =>
  fc.record({
    running: fc.constant(rs),
    failing: rs.length > 0 ? fc.constantFrom(...rs.map((r) => ({ instance: r.instance, plugin: r.plugin }))) : fc.record({ instance: fc.constant("x"), plugin }),
    shortfallMiB: fc.option(fc.oneof(mib, fc.constantFrom(-1, 0)), { nil: undefined }),
    policy: fc.constantFrom<SchedulingPolicy>("permissive", "safety", "queue"),
  }),
)

type RetryScene = { running: ReadonlyArray<RunningInstance>; failing: { instance: string; plugin: string } }
const eligibleOf = (s: RetryScene) => s.running.filter((r) => r.instance !== s.failing.instance && r.plugin !== s.failing.plugin && r.inFlight === 0)
const costOf = (s: RetryScene, ids: ReadonlyArray<string>) => sum(s.running.filter((r) => ids.includes(r.instance)))

describe("eviction for a retry (chooseEvictions)", () => {
  it("never the failing instance, never another instance of its plugin, never a busy one", () => {
    fc.assert(
      fc.property(retryScene, (s) => {
        const choice = chooseEvictions(s)
        const eligible = eligibleOf(s).map((r) => r.instance)
        for (const id of choice.instances) expect(eligible).toContain(id)
        expect(new Set(choice.instances).size).toBe(choice.instances.length)
        expect(choice.freedMiB).toBe(costOf(s, choice.instances))
      }),
      { numRuns: 500 },
    )
  })

  it("with no shortfall known, or under permissive: exactly one when there is one, the least recently used, the largest among equals", () => {
    fc.assert(
      fc.property(retryScene, (s) => {
        const choice = chooseEvictions(s)
        if (s.shortfallMiB !== undefined && s.policy !== "permissive") return
        const eligible = eligibleOf(s)
        expect(choice.instances.length).toBe(Math.min(1, eligible.length))
        expect(choice.shortfallCovered).toBeUndefined()
        if (eligible.length === 0) return
        const chosen = eligible.find((r) => r.instance === choice.instances[0])!
        for (const other of eligible) {
          expect(chosen.lastUsed).toBeLessThanOrEqual(other.lastUsed)
          if (other.lastUsed === chosen.lastUsed) {
            expect(chosen.costMiB).toBeGreaterThanOrEqual(other.costMiB)
            if (other.costMiB === chosen.costMiB) expect(chosen.instance <= other.instance).toBe(true)
          }
        }
      }),
      { numRuns: 500 },
    )
  })

  it("with a shortfall known: enough to cover it, and no more (without any one of them it is not covered); all of them when even all are not enough", () => {
    fc.assert(
      fc.property(
        retryScene.filter((s) => s.shortfallMiB !== undefined && s.policy !== "permissive"),
        (s) => {
          const choice = chooseEvictions(s)
          const shortfall = s.shortfallMiB!
          if (choice.shortfallCovered) {
            expect(choice.freedMiB).toBeGreaterThanOrEqual(shortfall)
            for (const spared of choice.instances) expect(costOf(s, choice.instances.filter((id) => id !== spared))).toBeLessThan(shortfall)
          } else {
            expect(choice.shortfallCovered).toBe(false)
            expect(sum(eligibleOf(s))).toBeLessThan(shortfall)
            expect([...choice.instances].sort()).toEqual(eligibleOf(s).map((r) => r.instance).sort())
          }
          if (shortfall <= 0) expect(choice.instances).toEqual([])
        },
      ),
      { numRuns: 500 },
    )
  })

  it("with a shortfall known and equal costs: the least recently used first, as many as the shortfall needs", () => {
    const equalCosts = retryScene.chain((s) =>
      fc.record({
        scene: fc.constant({ ...s, running: s.running.map((r) => ({ ...r, costMiB: 100 })) }),
        shortfallMiB: fc.integer({ min: 1, max: 1000 }),
        policy: fc.constantFrom<SchedulingPolicy>("safety", "queue"),
      }),
    )
    fc.assert(
      fc.property(equalCosts, ({ scene, shortfallMiB, policy }) => {
        const choice = chooseEvictions({ ...scene, shortfallMiB, policy })
        const byAge = eligibleOf(scene).sort((a, b) => a.lastUsed - b.lastUsed || (a.instance < b.instance ? -1 : 1))
        expect(choice.instances).toEqual(byAge.slice(0, Math.ceil(shortfallMiB / 100)).map((r) => r.instance))
      }),
      { numRuns: 300 },
    )
  })

  it("is deterministic: the same inputs, in any order, give the same choice", () => {
    fc.assert(
      fc.property(
        retryScene.chain((s) => fc.tuple(fc.constant(s), shuffled(s.running))),
        ([s, reordered]) => {
          const choice = chooseEvictions(s)
          expect(chooseEvictions(s)).toEqual(choice)
          expect(chooseEvictions({ ...s, running: reordered })).toEqual(choice)
        },
      ),
      { numRuns: 300 },
    )
  })
})

describe("the default memory budget (defaultBudgetMiB)", () => {
  it("is half of the total memory, in whole MiB, and grows with it", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1 << 24 }), fc.integer({ min: 0, max: 1 << 24 }), (a, b) => {
        expect(defaultBudgetMiB(a)).toBe(Math.floor(a / 2))
        expect(Number.isInteger(defaultBudgetMiB(a))).toBe(true)
        if (a <= b) expect(defaultBudgetMiB(a)).toBeLessThanOrEqual(defaultBudgetMiB(b))
      }),
    )
  })
})
