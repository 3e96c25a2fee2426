import { Deferred, Effect, FiberId, Option } from "effect"
import { afterInterruption, isTerminal, type Job } from "@plinth/domain"
import type { QueueState, SequenceEntry } from "./QueueState.js"
import type { FinishedJobs } from "./FinishedJobs.js"
import type { PendingOrder } from "./PendingOrder.js"
import type { Sequences } from "./Sequences.js"

/* Recovery from the journal at start: finished jobs back in the history, unfinished ones re-queued or failed (domain afterInterruption), sequences resumed. */
export const makeRecovery = (q: QueueState, order: PendingOrder, finished: FinishedJobs, sequencesPart: Sequences) => {
  const { manager, journal, live, sequences, counts, maxHistory, journalWrite } = q

  const { enqueue } = order
  const { archiveJob } = finished
  const { finishSequence, sequenceStepEnded, submitStep } = sequencesPart

  const pluginOf = (instance: string) => Effect.map(Effect.option(manager.get(instance)), (m) => (Option.isSome(m) ? m.value.plugin : instance))

  const recover = Effect.gen(function* () {
    if (Option.isSome(journal)) {
      // A journal that cannot be read stops the start: starting empty would drop every job it holds without a word.
      const recovered = yield* journal.value.recover(maxHistory)
      for (const job of [...recovered.history].reverse()) archiveJob(job, [])
      const ended: Array<Job> = []
      for (const job of recovered.unfinished) {
        const plugin = yield* pluginOf(job.instance)
        const outcome = afterInterruption(job, plugin, Date.now())
        if (outcome._tag === "requeue") {
          if (outcome.job !== job) yield* journalWrite([outcome.job])
          enqueue(outcome.job, plugin)
        } else {
          yield* journalWrite([outcome.job])
          archiveJob(outcome.job, [])
          counts.failed++
          ended.push(outcome.job)
        }
      }
      for (const sequence of recovered.sequences) {
        const entry: SequenceEntry = { sequence, done: Deferred.unsafeMake(FiberId.none), current: undefined }
        sequences.set(sequence.id, entry)
        const member = [...live.values()].find((e) => e.job.sequence?.id === sequence.id && e.job.sequence.index === sequence.current)
        const endedMember = ended.find((j) => j.sequence?.id === sequence.id && j.sequence.index === sequence.current)
        if (member !== undefined) entry.current = member.job.id
        else if (endedMember !== undefined) {
          entry.current = endedMember.id
          yield* sequenceStepEnded(endedMember)
        } else if (isTerminal(sequence.status)) yield* finishSequence(entry)
        else {
          const finishedStep = recovered.history.find((j) => j.sequence?.id === sequence.id && j.sequence.index === sequence.current)
          if (finishedStep !== undefined) {
            entry.current = finishedStep.id
            yield* sequenceStepEnded(finishedStep)
          } else yield* submitStep(entry, sequence.current)
        }
      }
    }
  })

  return { recover }
}

export type Recovery = ReturnType<typeof makeRecovery>
