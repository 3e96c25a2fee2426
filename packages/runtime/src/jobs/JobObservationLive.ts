import { Clock, Effect, Layer, Option, type Queue, type Scope } from "effect"
import type { JobLogLine } from "@plinth/domain"
import { PluginManager, type PluginManagerService } from "../manager/PluginManager.js"
import { JobObservation, type WorkerSample } from "./JobObservation.js"

/*
 * The queue's observation seam (JobObservation.ts) over the PluginManager:
 * a job's log lines are its instance's worker output (the manager's
 * `subscribeOutput`: cleaned, capped, rate-limited, ADR 0031) and its
 * snapshots the manager's `snapshot` of the current worker (/proc). The queue
 * uses this when the host provides no JobObservation of its own.
 */

/** Lines the queue's reader of an instance may hold before it takes them (it takes up to 1,000 at a time). */
const LINE_BUFFER = 2000

export const jobObservationOf = (manager: PluginManagerService): JobObservation["Type"] =>
  JobObservation.of({
    // One reader per instance, shared by its running jobs (JobQueueLive). A WorkerOutputLine is a JobLogLine with its pid (and `cut`) besides; the job's Schema keeps the three fields it names.
    lines: (instance): Effect.Effect<Queue.Dequeue<JobLogLine>, never, Scope.Scope> => manager.subscribeOutput(instance, { buffer: LINE_BUFFER }),
    sample: (instance) =>
      Effect.flatMap(manager.snapshot(instance), (sample) =>
        Option.isNone(sample)
          ? Effect.succeedNone
          : Effect.map(Clock.currentTimeMillis, (at): Option.Option<WorkerSample> => Option.some({ at, ...sample.value })),
      ),
  })

/** JobObservation from the PluginManager in context. */
export const JobObservationLive: Layer.Layer<JobObservation, never, PluginManager> = Layer.effect(JobObservation, Effect.map(PluginManager, jobObservationOf))
