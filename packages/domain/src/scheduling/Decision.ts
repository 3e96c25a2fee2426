import { Schema } from "effect"
import { MiB } from "./Types.js"

/** The candidate alone needs more than the whole budget: no eviction and no wait can make it fit. */
export const LargerThanBudget = Schema.TaggedStruct("LargerThanBudget", {
  expectedMiB: MiB,
  budgetMiB: MiB,
})

/**
 * The candidate fits the budget, but not beside what busy instances hold, even
 * with every idle instance evicted: it fits once enough of them finish.
 */
export const BusyInstancesHoldMemory = Schema.TaggedStruct("BusyInstancesHoldMemory", {
  expectedMiB: MiB,
  budgetMiB: MiB,
  /** Held by running instances, busy or idle. */
  inUseMiB: MiB,
  /** Held by the busy ones. */
  busyMiB: MiB,
  /** The busy instances, sorted. */
  busy: Schema.Array(Schema.String),
})

/** Why a candidate is not admitted now: what a block-reason event and a refusal carry. */
export const BlockReason = Schema.Union(LargerThanBudget, BusyInstancesHoldMemory)
export type BlockReason = typeof BlockReason.Type

/** Start the candidate now. */
export const Admit = Schema.TaggedStruct("Admit", {})
/** Stop these idle instances, then start the candidate: it fits after that. */
export const Evict = Schema.TaggedStruct("Evict", {
  /** Instance ids, in the order to stop them; never empty. */
  instances: Schema.Array(Schema.String),
  freedMiB: MiB,
})
/** Not now: ask again when a running instance finishes or stops (the queue policy). */
export const Wait = Schema.TaggedStruct("Wait", { reason: BlockReason })
/** Not under this policy (safety), or not ever (the candidate is larger than the budget). */
export const Refuse = Schema.TaggedStruct("Refuse", { reason: BlockReason })

export const AdmissionDecision = Schema.Union(Admit, Evict, Wait, Refuse)
export type AdmissionDecision = typeof AdmissionDecision.Type

const mib = (n: number) => `${Number.isInteger(n) ? n : n.toFixed(1)} MiB`

/** One line saying why a candidate waits or was refused. */
export const describeBlockReason = (reason: BlockReason): string =>
  reason._tag === "LargerThanBudget"
    ? `it needs ${mib(reason.expectedMiB)}, more than the whole memory budget of ${mib(reason.budgetMiB)}`
    : `it needs ${mib(reason.expectedMiB)} and busy instances (${reason.busy.join(", ")}) hold ${mib(reason.busyMiB)} of the ${mib(reason.budgetMiB)} budget`
