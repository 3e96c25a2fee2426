import { Array as Arr, Order } from "effect"
import { isBusy, type RunningInstance, type SchedulingPolicy } from "./Types.js"

/**
 * The order in which idle instances are given up: least recently used first;
 * among equally idle ones the largest (highest cost, i.e. measured peak) first,
 * since it frees the most; then by instance id, so the order is total and the
 * choice the same on every run.
 */
export const evictionOrder: Order.Order<RunningInstance> = Order.combineAll([
  Order.mapInput(Order.number, (r: RunningInstance) => r.lastUsed),
  Order.reverse(Order.mapInput(Order.number, (r: RunningInstance) => r.costMiB)),
  Order.mapInput(Order.string, (r: RunningInstance) => r.instance),
])

export const sumMiB = (instances: ReadonlyArray<RunningInstance>): number => instances.reduce((total, r) => total + r.costMiB, 0)

/**
 * The fewest of `ordered`, preferring the front, whose costs together are
 * `enough`. Takes a prefix until it is enough, then gives back, latest taken
 * first, every one the rest can do without; so no instance in the answer can
 * be dropped (one pass suffices: dropping more only makes each kept one more
 * needed). `covered` is false when even all of them are not enough; then all
 * of them are returned.
 */
export const coverMinimally = (
  ordered: ReadonlyArray<RunningInstance>,
  enough: (freedMiB: number) => boolean,
): { readonly instances: ReadonlyArray<RunningInstance>; readonly covered: boolean } => {
  if (enough(0)) return { instances: [], covered: true }
  const taken: Array<RunningInstance> = []
  for (const r of ordered) {
    taken.push(r)
    if (enough(sumMiB(taken))) break
  }
  if (!enough(sumMiB(taken))) return { instances: taken, covered: false }
  const kept = taken.map(() => true)
  const keptOnes = () => taken.filter((_, j) => kept[j])
  for (let i = taken.length - 1; i >= 0; i--) {
    kept[i] = false
    if (!enough(sumMiB(keptOnes()))) kept[i] = true
  }
  return { instances: keptOnes(), covered: true }
}

/** What to evict so a failing call can be retried, and whether that is known to free enough. */
export interface EvictionChoice {
  /** Instance ids, in the order to stop them. */
  readonly instances: ReadonlyArray<string>
  readonly freedMiB: number
  /** Whether `freedMiB` reaches the shortfall; undefined when no shortfall is known or the policy is permissive. */
  readonly shortfallCovered: boolean | undefined
}

/**
 * The idle instances to stop before retrying a call that failed for lack of
 * memory (retry after eviction). Never the failing instance, never another
 * instance of its plugin (its siblings: same code, same workload, and likely
 * the caller's next call), never a busy one. In `evictionOrder`.
 *
 * - With a shortfall known (the plugin's `PluginResourceError` said how much it
 *   lacked) under `safety` or `queue`: the fewest that free it (`coverMinimally`);
 *   none when it is not positive; all candidates, uncovered, when even all of
 *   them do not free it (the manager decides whether a retry is still worth it).
 * - With no shortfall known (a worker killed or out of heap says nothing of how
 *   much), or under `permissive`: exactly one, the first, when there is one.
 */
export const chooseEvictions = (options: {
  readonly failing: { readonly instance: string; readonly plugin: string }
  readonly running: ReadonlyArray<RunningInstance>
  readonly shortfallMiB?: number | undefined
  readonly policy: SchedulingPolicy
}): EvictionChoice => {
  const { failing, policy, shortfallMiB } = options
  const eligible = Arr.sort(
    options.running.filter((r) => r.instance !== failing.instance && r.plugin !== failing.plugin && !isBusy(r)),
    evictionOrder,
  )
  if (shortfallMiB === undefined || policy === "permissive") {
    const first = eligible.slice(0, 1)
    return { instances: first.map((r) => r.instance), freedMiB: sumMiB(first), shortfallCovered: undefined }
  }
  const cover = coverMinimally(eligible, (freed) => freed >= shortfallMiB)
  return { instances: cover.instances.map((r) => r.instance), freedMiB: sumMiB(cover.instances), shortfallCovered: cover.covered }
}

/**
 * The memory a `PluginResourceError`'s shortfall asks to free, for
 * `chooseEvictions`: needed minus available when it is about memory (its MB
 * taken as MiB: an estimate either way); undefined for another resource or
 * none, so eviction falls back to one instance.
 */
export const memoryShortfallMiB = (
  shortfall: { readonly resource: string; readonly needed: number; readonly available: number } | undefined,
): number | undefined =>
  shortfall !== undefined && shortfall.resource === "memory_mb" && Number.isFinite(shortfall.needed - shortfall.available)
    ? shortfall.needed - shortfall.available
    : undefined
