import { Duration, Effect, Option } from "effect"
import { describeJsonValueProblem, jsonValueProblem, timeoutProblem, type SequenceStep } from "@plinth/domain"
import type { PluginManagerService } from "../manager/PluginManager.js"

/** A submitted timeout in milliseconds, or what is wrong with it. */
export const timeoutMillisOf = (timeout: Duration.DurationInput | undefined): number | undefined | { problem: string } => {
  if (timeout === undefined) return undefined
  const decoded = Duration.decodeUnknown(timeout)
  if (Option.isNone(decoded)) return { problem: `timeout must be a duration, got ${typeof timeout === "string" ? JSON.stringify(timeout) : typeof timeout}` }
  const millis = Duration.toMillis(decoded.value)
  const problem = timeoutProblem(millis)
  return problem === undefined ? millis : { problem }
}

/*
 * The checks a submitted job passes before any queue accepts it, whichever
 * queue it is (this host's, or the cluster's): the instance is loaded and
 * enabled, the action is declared, the timeout is a duration.
 */
export const makeJobRequestChecks = (manager: PluginManagerService) => {
  /** Each plugin's declared actions: its manifest was verified when the manager started and does not change. */
  const declared = new Map<string, ReadonlySet<string>>()

  const instanceProblem = (instance: string, action: string): Effect.Effect<{ plugin: string } | { problem: string }> =>
    Effect.gen(function* () {
      const found = yield* Effect.either(manager.get(instance))
      if (found._tag === "Left") {
        const loaded = found.left.loaded
        return { problem: `instance '${instance}' is not loaded; load it first${loaded.length > 0 ? ` (loaded: ${loaded.join(", ")})` : ""}` }
      }
      const managed = found.right
      if (!managed.enabled) {
        return { problem: `instance '${instance}' is disabled${managed.disabledReason !== undefined ? ` (${managed.disabledReason})` : ""}; enable it first` }
      }
      let actions = declared.get(managed.plugin)
      if (actions === undefined) {
        actions = new Set(yield* Effect.orElseSucceed(manager.actions(instance), () => [] as ReadonlyArray<string>))
        declared.set(managed.plugin, actions)
      }
      if (!actions.has(action)) {
        return { problem: `instance '${instance}' (plugin ${managed.plugin}) declares no action '${action}'; it declares: ${[...actions].join(", ") || "none"}` }
      }
      return { plugin: managed.plugin }
    })

  return { instanceProblem }
}

/**
 * What is wrong with a sequence's steps, the first problem found, in words
 * naming the step; undefined when every step passes. `instanceProblem` checks
 * instance and action where this host can (a cluster client cannot).
 */
export const stepsProblem = (
  steps: ReadonlyArray<SequenceStep>,
  instanceProblem: ((instance: string, action: string) => Effect.Effect<{ plugin: string } | { problem: string }>) | undefined,
): Effect.Effect<string | undefined> =>
  Effect.gen(function* () {
    for (const [index, step] of steps.entries()) {
      if (instanceProblem !== undefined) {
        const checked = yield* instanceProblem(step.instance, step.action)
        if ("problem" in checked) return `step ${index + 1}: ${checked.problem}`
      }
      const badInput = jsonValueProblem(step.input)
      if (badInput !== undefined) return `step ${index + 1}: the input is not a JSON value: ${describeJsonValueProblem(badInput)}`
      if (step.timeoutMillis !== undefined) {
        const problem = timeoutProblem(step.timeoutMillis)
        if (problem !== undefined) return `step ${index + 1}: ${problem}`
      }
    }
    return undefined
  })
