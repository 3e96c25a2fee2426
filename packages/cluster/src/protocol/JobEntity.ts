import { ClusterSchema, Entity } from "@effect/cluster"
import { Rpc } from "@effect/rpc"
import { Schema } from "effect"
import { Job, JobId, JobLogLine, JobSequence } from "@plinth/domain"

/*
 * The cluster's jobs are messages to entities of type PlinthJob, one entity
 * per plugin instance (its id is the instance's): every job of an instance
 * goes to the runner that owns that instance's shard, and runs on that
 * runner's queue, so the instance's order (priority, then arrival), its
 * concurrency cap and its breaker hold across the cluster as on one host
 * (ADR 0033). `Run` is persisted: it is stored in Postgres before `submit`
 * returns and delivered again, to whichever runner owns the shard, until a
 * reply is stored. Its primary key is the job id, so a second `Run` for the
 * same job is the same message, not a second run. The other messages reach
 * the runner where the job is, and are not stored.
 */

export const RunJob = Rpc.make("Run", {
  payload: { job: Job },
  success: Job,
  primaryKey: ({ job }) => job.id,
}).annotate(ClusterSchema.Persisted, true)

/** Cancels the job where it is queued or running; false when it had finished. */
export const CancelJob = Rpc.make("Cancel", { payload: { job: JobId }, success: Schema.Boolean })

/** A pending job's new priority; false when it is no longer pending. */
export const ReorderJob = Rpc.make("Reorder", { payload: { job: JobId, priority: Schema.Number }, success: Schema.Boolean })

/** The lines the job's worker has written so far, from the runner running it. */
export const JobLogs = Rpc.make("Logs", { payload: { job: JobId }, success: Schema.Array(JobLogLine) })

export const JobEntity = Entity.make("PlinthJob", [RunJob, CancelJob, ReorderJob, JobLogs])

/**
 * A sequence in the cluster is an entity of type PlinthSequence whose id is
 * the sequence's id. Its persisted `Run` steps through the sequence: each
 * step is a cluster job with an id derived from the sequence's and the
 * step's index, so a sequence delivered again after its runner died goes on
 * from its record, waiting on (not repeating) the step it had reached.
 */
export const RunSequence = Rpc.make("Run", {
  payload: { sequence: JobSequence },
  success: JobSequence,
  primaryKey: ({ sequence }) => sequence.id,
}).annotate(ClusterSchema.Persisted, true)

export const SequenceEntity = Entity.make("PlinthSequence", [RunSequence])
