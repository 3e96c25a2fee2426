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

/** A job's instance and action checked: the plugin that runs it, or what is wrong. */
type Checked = { plugin: string } | { problem: string }

/*
 * The checks a submitted job passes before any queue accepts it, whichever
 * queue it is (this host's, or the cluster's): the instance is loaded and
 * enabled, the action is declared, the timeout is a duration.
 */
export const makeJobRequestChecks = (manager: PluginManagerService) => {
  /** Each plugin's declared actions: its manifest was verified when the manager started and does not change. */
  const declared = new Map<string, ReadonlySet<string>>()

  const actionProblem = (instance: string, plugin: string, actions: ReadonlySet<string>, action: string): Checked =>
    actions.has(action)
      ? { plugin }
      : { problem: `instance '${instance}' (plugin ${plugin}) declares no action '${action}'; it declares: ${[...actions].join(", ") || "none"}` }

  // Steps, not a generator: a busy host checks every job it is given.
  const instanceProblem = (instance: string, action: string): Effect.Effect<Checked> =>
    Effect.matchEffect(manager.get(instance), {
      onFailure: (error): Effect.Effect<Checked> => {
        const loaded = error.loaded
        return Effect.succeed({ problem: `instance '${instance}' is not loaded; load it first${loaded.length > 0 ? ` (loaded: ${loaded.join(", ")})` : ""}` })
      },
      onSuccess: (managed): Effect.Effect<Checked> => {
        if (!managed.enabled) {
          return Effect.succeed({ problem: `instance '${instance}' is disabled${managed.disabledReason !== undefined ? ` (${managed.disabledReason})` : ""}; enable it first` })
        }
        const actions = declared.get(managed.plugin)
        if (actions !== undefined) return Effect.succeed(actionProblem(instance, managed.plugin, actions, action))
        return Effect.map(Effect.orElseSucceed(manager.actions(instance), () => [] as ReadonlyArray<string>), (names) => {
          const read = new Set(names)
          declared.set(managed.plugin, read)
          return actionProblem(instance, managed.plugin, read, action)
        })
      },
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
  instanceProblem: ((instance: string, action: string) => Effect.Effect<Checked>) | undefined,
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
