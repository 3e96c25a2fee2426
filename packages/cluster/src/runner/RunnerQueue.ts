import { Context, Layer } from "effect"
import { JobQueue, JobQueueLive, type JobQueueOptions } from "@plinth/runtime"
import { ClusterJournal } from "../storage/ClusterJournal.js"

/*
 * The queue each runner runs its jobs on: the single-host queue (ordering,
 * concurrency, admission, retries, cancellation phases, logs, snapshots),
 * journaled in the cluster's job rows instead of a local file.
 */
export class RunnerQueue extends Context.Tag("@plinth/cluster/RunnerQueue")<RunnerQueue, JobQueue["Type"]>() {}

export const RunnerQueueLive = (options: { readonly runner: string; readonly database: string; readonly queue?: JobQueueOptions }) =>
  Layer.effect(RunnerQueue, JobQueue).pipe(
    Layer.provide(JobQueueLive({ ...options.queue, journal: true })),
    Layer.provide(ClusterJournal(options.runner, options.database)),
  )
