import { Deferred, Duration, Effect, FiberId, Option } from "effect"
import {
  isTerminal,
  JobError,
  JobNotFound,
  JobRefused,
  newSequence,
  priorityProblem,
  sequenceCancelled,
  stepEnded,
  stepStarted,
  type Job,
  type JobSequence,
  type SequenceId,
  type SequenceStep,
} from "@plinth/domain"
import { newJobId, newSequenceId } from "./JobIds.js"
import { stepsProblem } from "./JobRequestChecks.js"
import type { SubmitSequenceOptions } from "./JobQueue.js"
import { refuse, type QueueState, type SequenceEntry } from "./QueueState.js"
import type { Cancellation } from "./Cancellation.js"
import type { Submission } from "./Submission.js"

/* Sequences: their steps submitted one at a time, advanced as each step's job ends, cancelled, waited for. */
export const makeSequences = (q: QueueState, submission: Submission, cancellation: Cancellation) => {
  const { live, sequences, archiveLimit, journalSequence, heard, publish } = q

  const { instanceProblem, submitChecked } = submission
  const { cancelEntry } = cancellation

  const sequenceArchive: Array<string> = []
  const finishSequence = (entry: SequenceEntry) =>
    Effect.gen(function* () {
      if (!(yield* Deferred.succeed(entry.done, entry.sequence))) return
      sequenceArchive.push(entry.sequence.id)
      while (sequenceArchive.length > archiveLimit) sequences.delete(sequenceArchive.shift()!)
    })

  const sequenceStepRunning = (id: SequenceId) =>
    Effect.suspend(() => {
      const entry = sequences.get(id)
      if (entry === undefined || entry.sequence.status !== "pending") return Effect.void
      entry.sequence = stepStarted(entry.sequence)
      return journalSequence(entry.sequence)
    })

  const submitStep = (entry: SequenceEntry, index: number): Effect.Effect<void> =>
    Effect.gen(function* () {
      // Shutting down: the journal says which step is next, and the next start queues it (recovery).
      if (q.closing) return
      const step = entry.sequence.steps[index]!
      const submitted = yield* Effect.either(
        submitChecked(
          {
            instance: step.instance,
            action: step.action,
            input: step.input,
            priority: entry.sequence.priority,
            ...(step.timeoutMillis !== undefined ? { timeout: Duration.millis(step.timeoutMillis) } : {}),
            ...(step.idempotencyKey !== undefined ? { idempotencyKey: step.idempotencyKey } : {}),
          },
          { id: entry.sequence.id, index },
        ),
      )
      if (submitted._tag === "Right") {
        entry.current = submitted.right
        return
      }
      // The step was fine at submission but cannot be queued now (its instance was unloaded or disabled since): it fails without a job.
      entry.current = undefined
      const advance = stepEnded(
        entry.sequence,
        {
          index,
          job: newJobId(Date.now()),
          status: "failed",
          error: new JobError({
            category: "input",
            tag: "JobRefused",
            message: submitted.left.message,
            retriable: false,
            plugin: step.instance,
            instance: step.instance,
            time: new Date(),
          }),
        },
        Date.now(),
      )
      yield* advanceSequence(entry, advance.sequence, advance.next)
    })

  const advanceSequence = (entry: SequenceEntry, sequence: JobSequence, next: number | undefined): Effect.Effect<void> =>
    Effect.gen(function* () {
      entry.sequence = sequence
      yield* journalSequence(sequence)
      if (next !== undefined) return yield* submitStep(entry, next)
      if (isTerminal(sequence.status)) yield* finishSequence(entry)
    })

  const sequenceStepEnded = (job: Job): Effect.Effect<void> =>
    Effect.gen(function* () {
      const position = job.sequence!
      const entry = sequences.get(position.id)
      if (entry === undefined || entry.current !== job.id) return
      entry.current = undefined
      const advance = stepEnded(
        entry.sequence,
        {
          index: position.index,
          job: job.id,
          status: job.status,
          ...(job.result !== undefined ? { result: job.result } : {}),
          ...(job.error !== undefined ? { error: job.error } : {}),
        },
        Date.now(),
      )
      if (heard()) publish({ _tag: "sequenceAdvanced", job: job.id, at: Date.now(), sequence: position.id, index: position.index, stepStatus: job.status, status: advance.sequence.status })
      yield* advanceSequence(entry, advance.sequence, advance.next)
    })

  const submitSequence = (steps: ReadonlyArray<SequenceStep>, sequenceOptions: SubmitSequenceOptions = {}): Effect.Effect<SequenceId, JobRefused> =>
    Effect.gen(function* () {
      if (q.closing) return yield* refuse("the queue is shutting down")
      const priority = sequenceOptions.priority ?? 0
      const badPriority = priorityProblem(priority)
      if (badPriority !== undefined) return yield* refuse(badPriority)
      const badStep = yield* stepsProblem(steps, instanceProblem)
      if (badStep !== undefined) return yield* refuse(badStep)
      const now = Date.now()
      const sequence = newSequence(newSequenceId(now), steps, sequenceOptions.mode ?? "failFast", priority, now)
      const entry: SequenceEntry = { sequence, done: Deferred.unsafeMake(FiberId.none), current: undefined }
      sequences.set(sequence.id, entry)
      yield* journalSequence(sequence)
      if (steps.length === 0) yield* finishSequence(entry)
      else yield* submitStep(entry, 0)
      return sequence.id
    })

  const cancelSequence = (id: SequenceId) =>
    Effect.gen(function* () {
      const entry = sequences.get(id)
      if (entry === undefined || isTerminal(entry.sequence.status)) return false
      entry.sequence = sequenceCancelled(entry.sequence, Date.now())
      yield* journalSequence(entry.sequence)
      const current = entry.current !== undefined ? live.get(entry.current) : undefined
      // The step's job ends cancelled, its result is recorded and the sequence's waiters hear once it has (sequenceStepEnded).
      if (current === undefined) yield* finishSequence(entry)
      else yield* cancelEntry(current)
      return true
    })

  const getSequence = (id: SequenceId) => Effect.sync(() => Option.map(Option.fromNullable(sequences.get(id)), (e) => e.sequence))
  const waitSequence = (id: SequenceId): Effect.Effect<JobSequence, JobNotFound> =>
    Effect.suspend(() => {
      const entry = sequences.get(id)
      return entry === undefined ? Effect.fail(new JobNotFound({ job: id })) : Deferred.await(entry.done)
    })

  return { finishSequence, sequenceStepRunning, submitStep, sequenceStepEnded, submitSequence, cancelSequence, getSequence, waitSequence }
}

export type Sequences = ReturnType<typeof makeSequences>
