import { Duration } from "effect"

/**
 * The share of the machine's total memory that plugin workers may hold by
 * default under the `safety` and `queue` policies (ADR 0025): the other half is
 * left to the host process, the OS and its page cache, and other programs, and
 * absorbs what the estimates miss (a worker's RSS exceeds its V8 heap: code,
 * buffers, the verified files it holds).
 */
export const DEFAULT_BUDGET_FRACTION = 0.5

/** The default memory budget in whole MiB for a machine with `totalMemoryMiB` (e.g. `os.totalmem() / 2 ** 20`). */
export const defaultBudgetMiB = (totalMemoryMiB: number): number =>
  Number.isFinite(totalMemoryMiB) && totalMemoryMiB > 0 ? Math.floor(totalMemoryMiB * DEFAULT_BUDGET_FRACTION) : 0

/** How long the `queue` policy waits for a candidate to fit before failing with `AdmissionTimeout`. */
export const DEFAULT_ADMISSION_TIMEOUT: Duration.Duration = Duration.minutes(5)
