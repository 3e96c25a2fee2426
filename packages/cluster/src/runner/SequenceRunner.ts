import { Duration, Effect, Option, Schedule } from "effect"
import { isTerminal, stepEnded, stepStarted, type JobSequence } from "@plinth/domain"
import { JobQueue } from "@plinth/runtime"
import { SequenceEntity } from "../protocol/JobEntity.js"
import { stepJobId } from "../protocol/StepIds.js"
import { JobRows } from "../storage/JobRows.js"
import type { EventSender } from "../events/EventRelay.js"

/*
 * A cluster sequence, carried on by the runner that owns its shard: one step
 * at a time, each a cluster job (it runs wherever its own shard is), the
 * sequence's record advanced by the domain's rules (stepStarted, stepEnded)
 * after each step ends. Everything it knows is in the rows, so a sequence
 * delivered again after its runner died goes on from there: it waits on the
 * step it had reached (that job is delivered again on its own) and never
 * submits a step twice (the step's id is fixed, its submission idempotent).
 */

const untilDatabaseIsBack = Schedule.spaced("1 second")

export const SequenceRunnerLive = (options: { readonly sender: EventSender }) =>
  SequenceEntity.toLayer(
    Effect.gen(function* () {
      const rows = yield* JobRows
      const queue = yield* JobQueue

      /** Writes `after` over `before`; on a lost race (a cancellation) the caller reads again and decides again. */
      const replace = (before: JobSequence, after: JobSequence) => (before === after ? Effect.succeed(true) : rows.replaceSequence(before, after))

      const run = (given: JobSequence): Effect.Effect<JobSequence> =>
        Effect.gen(function* () {
          for (;;) {
            const sequence = (yield* rows.getSequence(given.id)) ?? given
            // A cancelled sequence still owes the result of the step it had started (stepEnded records it), even when it
            // is delivered again after its carrier died: its waiters wait for that result.
            const owed = sequence.status === "cancelled" && sequence.results.length <= sequence.current
            if (isTerminal(sequence.status) && !owed) return sequence
            const index = sequence.current
            const step = sequence.steps[index]!
            const id = stepJobId(sequence.id, index)
            if (owed) {
              // Cancelled before its step was submitted: nothing is owed.
              if (Option.isNone(yield* queue.get(id))) return sequence
            } else {
              yield* Effect.orDie(
                queue.submit({
                  id,
                  instance: step.instance,
                  action: step.action,
                  input: step.input,
                  priority: sequence.priority,
                  sequence: { id: sequence.id, index },
                  ...(step.timeoutMillis !== undefined ? { timeout: Duration.millis(step.timeoutMillis) } : {}),
                  ...(step.idempotencyKey !== undefined ? { idempotencyKey: step.idempotencyKey } : {}),
                }),
              )
              if (!(yield* replace(sequence, stepStarted(sequence)))) continue
            }
            const job = yield* Effect.orDie(queue.wait(id))
            // Read again: the sequence may have been cancelled while its step ran.
            const now = (yield* rows.getSequence(sequence.id)) ?? sequence
            const advance = stepEnded(
              now,
              {
                index,
                job: id,
                status: job.status,
                ...(job.result !== undefined ? { result: job.result } : {}),
                ...(job.error !== undefined ? { error: job.error } : {}),
              },
              Date.now(),
            )
            if (!(yield* replace(now, advance.sequence))) continue
            if (advance.sequence !== now) {
              options.sender.send({ _tag: "sequenceAdvanced", job: id, at: Date.now(), sequence: sequence.id, index, stepStatus: job.status, status: advance.sequence.status })
            }
            if (advance.next === undefined) return advance.sequence
          }
        }).pipe(Effect.retry(untilDatabaseIsBack), Effect.orDie)

      return SequenceEntity.of({ Run: (request) => run(request.payload.sequence) })
    }),
    { concurrency: "unbounded", maxIdleTime: "30 seconds" },
  )
