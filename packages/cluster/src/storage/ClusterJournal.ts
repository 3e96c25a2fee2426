import { Effect, Layer } from "effect"
import { JobJournal, StoreUnavailable } from "@plinth/runtime"
import { JobRows } from "./JobRows.js"

/*
 * A runner's own queue journals into the cluster's job rows: the job is
 * recorded running before its call starts and finished before anyone is told,
 * as on a single host (ADR 0030), but in the database every runner shares.
 * Recovery is the cluster's: a runner starts with nothing of its own to
 * resume, since a job it was running when it died is delivered again, to
 * whichever runner owns its shard then.
 */

export const ClusterJournal = (runner: string, database: string) =>
  Layer.effect(
    JobJournal,
    Effect.gen(function* () {
      const rows = yield* JobRows
      const unavailable = (error: { readonly message: string; readonly cause?: unknown }) => StoreUnavailable.fromSql(database, error)
      return JobJournal.of({
        write: (jobs) => Effect.mapError(rows.write(jobs, runner), unavailable),
        // The cluster's sequences are carried by SequenceRunner over rows of their own; this queue runs their steps, as jobs.
        writeSequence: () => Effect.void,
        recover: () => Effect.succeed({ unfinished: [], sequences: [], history: [] }),
        find: (job) => Effect.mapError(rows.get(job), unavailable),
        findByKey: (key) => Effect.mapError(rows.findByKey(key), unavailable),
      })
    }),
  )
