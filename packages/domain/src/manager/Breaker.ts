/*
 * The circuit breaker of one instance, as a pure step: the count of
 * consecutive failures after one more call. Input failures are the caller's
 * (a bad argument says nothing about the instance's health), so they neither
 * count nor reset; every other failure, timeouts included, counts; a success resets.
 */

export const DEFAULT_BREAKER_THRESHOLD = 5

/** The categories of ErrorTaxonomy.ts, spelled out: modules of this folder import only each other. */
export type CallOutcome = { readonly ok: true } | { readonly ok: false; readonly category: "input" | "transient" | "resource" | "fatal" }

export interface BreakerStep {
  readonly failures: number
  /** True when the count has reached the threshold. */
  readonly opens: boolean
}

export const breakerStep = (failures: number, outcome: CallOutcome, threshold: number): BreakerStep => {
  if (outcome.ok) return { failures: 0, opens: false }
  if (outcome.category === "input") return { failures, opens: false }
  const next = failures + 1
  return { failures: next, opens: next >= threshold }
}
