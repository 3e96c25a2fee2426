import { Effect, Layer } from "effect"
import { isTerminal, type Job, type JobId, type JobSequence } from "@plinth/domain"
import { JobJournal } from "../stores/JobJournal.js"

/*
 * A JobJournal in memory: the same contract as the SQLite one, for tests and
 * for hosts that want the queue's recovery rules without a database. A test
 * keeps `store` and builds a second queue over it to play a restart.
 */

export interface MemoryJournalStore {
  /** Every job's last written state, in first-write (submission) order. */
  readonly jobs: Map<string, Job>
  readonly sequences: Map<string, JobSequence>
  /** How many write calls there were. */
  writes: number
}

export const makeMemoryJournalStore = (): MemoryJournalStore => ({ jobs: new Map(), sequences: new Map(), writes: 0 })

export const makeMemoryJournal = (store: MemoryJournalStore) =>
  JobJournal.of({
    write: (jobs) =>
      Effect.sync(() => {
        store.writes++
        for (const job of jobs) store.jobs.set(job.id, job)
      }),
    writeSequence: (sequence) => Effect.sync(() => void store.sequences.set(sequence.id, sequence)),
    recover: (historyLimit) =>
      Effect.sync(() => {
        const all = [...store.jobs.values()]
        return {
          unfinished: all.filter((job) => !isTerminal(job.status)),
          sequences: [...store.sequences.values()].filter((s) => !isTerminal(s.status)),
          history: all
            .filter((job) => isTerminal(job.status))
            .sort((a, b) => (b.finishedAt ?? 0) - (a.finishedAt ?? 0))
            .slice(0, historyLimit),
        }
      }),
    find: (job: JobId) => Effect.sync(() => store.jobs.get(job)),
    findByKey: (key) => Effect.sync(() => [...store.jobs.values()].find((job) => job.idempotencyKey === key)),
  })

export const JobJournalMemory = (store: MemoryJournalStore = makeMemoryJournalStore()) => Layer.succeed(JobJournal, makeMemoryJournal(store))
