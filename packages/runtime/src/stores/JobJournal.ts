import { Context, type Effect, Schema } from "effect"
import type { Job, JobId, JobSequence } from "@plinth/domain"
import type { StoreUnavailable } from "./StoreErrors.js"

/*
 * The job queue's journal in the stores' SQLite database: every job's state,
 * written before the queue acts on it (a job is journaled running before its
 * call starts), so that after `kill -9` the queue can tell what was pending,
 * what was running and what had finished. Writes are grouped: many callers'
 * records share one transaction (see ADR 0030).
 */

/**
 * A record in the journal that this Plinth cannot read back as a job or a
 * sequence (written by another version, or edited by hand). It is reported,
 * left in the file for a person to look at, and not run.
 */
export class JournalRecordUnreadable extends Schema.TaggedError<JournalRecordUnreadable>()("JournalRecordUnreadable", {
  path: Schema.String,
  kind: Schema.Literal("job", "sequence"),
  id: Schema.String,
  reason: Schema.String,
}) {
  override get message() {
    return `the job journal in '${this.path}' holds a ${this.kind} ${this.id} that cannot be read (${this.reason}); it was left in the file and not run: remove it with sqlite3, or use this data directory with the Plinth that wrote it`
  }
}

export interface RecoveredJournal {
  /** Jobs that had not finished, in the order they were submitted; running ones still say "running". */
  readonly unfinished: ReadonlyArray<Job>
  /** Sequences that had not finished. */
  readonly sequences: ReadonlyArray<JobSequence>
  /** The newest finished jobs, newest first, at most the number asked for. */
  readonly history: ReadonlyArray<Job>
  /** Records that did not decode (in any of the three groups above); each is also logged as a warning. */
  readonly unreadable?: ReadonlyArray<JournalRecordUnreadable>
}

export class JobJournal extends Context.Tag("@plinth/runtime/JobJournal")<
  JobJournal,
  {
    /** Records each job's current state (insert or replace); durable against a crash of the process once it returns. */
    readonly write: (jobs: ReadonlyArray<Job>) => Effect.Effect<void, StoreUnavailable>
    readonly writeSequence: (sequence: JobSequence) => Effect.Effect<void, StoreUnavailable>
    /** Reads the journal at start-up. */
    readonly recover: (historyLimit: number) => Effect.Effect<RecoveredJournal, StoreUnavailable>
    /** A finished job that has left the queue's memory. */
    readonly find: (job: JobId) => Effect.Effect<Job | undefined, StoreUnavailable>
    readonly findByKey: (idempotencyKey: string) => Effect.Effect<Job | undefined, StoreUnavailable>
  }
>() {}
