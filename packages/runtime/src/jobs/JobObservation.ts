import { Context, type Effect, type Option, type Queue, type Scope } from "effect"
import type { JobLogLine } from "@plinth/domain"

/*
 * Where the queue gets what a job's worker writes and uses (issue 9 §1: each
 * job's log, a resource snapshot every few seconds). The queue does not read
 * processes itself: a host provides this service over the manager's worker
 * output and process samples; without it, jobs have no log lines and no
 * snapshots. While a job runs, every line its instance's worker writes is the
 * job's (with more than one job running on one instance, each gets them all:
 * a worker's output does not say which call wrote it).
 */

export interface WorkerSample {
  readonly at: number
  readonly pid: number
  readonly rssBytes: number
  /** User + system CPU time of the worker since it started. */
  readonly cpuMillis: number
}

export class JobObservation extends Context.Tag("@plinth/runtime/JobObservation")<
  JobObservation,
  {
    /** The lines the instance's worker writes from now on, until the scope closes. */
    readonly lines: (instance: string) => Effect.Effect<Queue.Dequeue<JobLogLine>, never, Scope.Scope>
    /** What the instance's worker uses now, if it has a live one. */
    readonly sample: (instance: string) => Effect.Effect<Option.Option<WorkerSample>>
  }
>() {}
