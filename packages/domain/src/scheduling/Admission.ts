import { Array as Arr, Order } from "effect"
import { Admit, Evict, Refuse, Wait, type AdmissionDecision, type BlockReason } from "./Decision.js"
import { coverMinimally, evictionOrder, sumMiB } from "./Eviction.js"
import { expectedMiB, isBusy, type Candidate, type RunningInstance, type SchedulingPolicy } from "./Types.js"

/**
 * Whether a candidate may start now, under a policy and a memory budget, beside
 * the instances already running. Pure: the same inputs give the same decision.
 *
 * - `permissive` admits.
 * - `safety` and `queue` count the candidate's expected memory (unknown counts
 *   as 0, see `expectedMiB`) on top of what the running instances cost. If it
 *   fits under the budget: admit. If stopping some idle instances makes it fit:
 *   evict the fewest that do (least recently used preferred, `evictionOrder`).
 *   Otherwise busy instances hold the memory: `safety` refuses, `queue` waits
 *   (the manager asks again when one finishes, up to its timeout).
 * - A candidate larger than the whole budget is refused by both: waiting
 *   cannot make it fit.
 *
 * A running entry with the candidate's own instance id is the worker it
 * replaces (a reload): it is neither counted nor evicted.
 */
export const decideAdmission = (options: {
  readonly policy: SchedulingPolicy
  readonly budgetMiB: number
  readonly running: ReadonlyArray<RunningInstance>
  readonly candidate: Candidate
}): AdmissionDecision => {
  const { policy, budgetMiB, candidate } = options
  if (policy === "permissive") return Admit.make({})
  const needed = expectedMiB(candidate.expected)
  if (needed > budgetMiB) return Refuse.make({ reason: { _tag: "LargerThanBudget", expectedMiB: needed, budgetMiB } })
  const others = options.running.filter((r) => r.instance !== candidate.instance)
  const inUse = sumMiB(others)
  const fitsAfterFreeing = (freed: number) => inUse - freed + needed <= budgetMiB
  if (fitsAfterFreeing(0)) return Admit.make({})
  const idle = Arr.sort(others.filter((r) => !isBusy(r)), evictionOrder)
  const cover = coverMinimally(idle, fitsAfterFreeing)
  if (cover.covered) return Evict.make({ instances: cover.instances.map((r) => r.instance), freedMiB: sumMiB(cover.instances) })
  const busy = others.filter(isBusy)
  const reason: BlockReason = {
    _tag: "BusyInstancesHoldMemory",
    expectedMiB: needed,
    budgetMiB,
    inUseMiB: inUse,
    busyMiB: sumMiB(busy),
    busy: Arr.sort(busy.map((r) => r.instance), Order.string),
  }
  return policy === "safety" ? Refuse.make({ reason }) : Wait.make({ reason })
}
