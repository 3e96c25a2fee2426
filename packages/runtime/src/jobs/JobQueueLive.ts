import { Effect, Layer, Schedule, Stream } from "effect"
import type { JobEvent, JobId } from "@plinth/domain"
import { PluginManager } from "../manager/PluginManager.js"
import type { StoreUnavailable } from "../stores/StoreErrors.js"
import { makeAttempts } from "./Attempts.js"
import { makeCancellation } from "./Cancellation.js"
import { makeFinishedJobs } from "./FinishedJobs.js"
import { makeInstanceEvents } from "./InstanceEvents.js"
import { jobEventsUntilEnd } from "./EventHub.js"
import { JobQueue, type EventFilter, type JobQueueOptions } from "./JobQueue.js"
import { makeLaneCarry } from "./LaneCarry.js"
import { makeLanes } from "./Lanes.js"
import { makePendingOrder } from "./PendingOrder.js"
import { makeQueueState, type SequenceHooks } from "./QueueState.js"
import { makeReading } from "./Reading.js"
import { makeRecovery } from "./Recovery.js"
import { makeSequences } from "./Sequences.js"
import { makeShutdown } from "./Shutdown.js"
import { makeSubmission } from "./Submission.js"
import { makeWatching } from "./Watching.js"

/*
 * The live job queue (issue 9 §1, §3, §4; ADR 0029). Pending jobs wait in
 * one array kept in run order (domain Ordering.ts); `concurrency` lanes
 * (fibers) each take the first whenever they are free and run it
 * through PluginManager.execute, so the manager's guards, scheduling and
 * retry after eviction apply. All state is plain mutable maps touched only
 * between fiber yields (one JS thread), and every change of a job is
 * journaled (when a JobJournal is provided) before the queue acts on it.
 *
 * This file assembles the queue from one module per concept, all over the
 * shared state of QueueState.ts: PendingOrder (run order, held jobs),
 * Submission, Lanes, Attempts (one job's tries and retries), LaneCarry,
 * Cancellation, FinishedJobs, Sequences, Watching (logs, snapshots),
 * Reading, Recovery, InstanceEvents and Shutdown.
 */

export const makeJobQueue = (options: JobQueueOptions = {}) =>
  Effect.gen(function* () {
    const q = yield* makeQueueState(options)
    const { concurrency, snapshotInterval, subscriberBuffer, hub } = q

    // Finished jobs and lanes reach the sequences, made last (they need submission and cancellation), through these.
    const hooks: SequenceHooks = {
      sequenceStepEnded: () => Effect.void,
      sequenceStepRunning: () => Effect.void,
    }
    const watching = makeWatching(q)
    const order = makePendingOrder(q)
    const submission = makeSubmission(q, order)
    const finished = makeFinishedJobs(q, watching, hooks)
    const carry = makeLaneCarry(q, finished)
    const attempts = makeAttempts(q, watching, carry)
    const lanes = makeLanes(q, order, attempts, carry, hooks)
    const cancellation = makeCancellation(q, order, finished, lanes)
    const sequences = makeSequences(q, submission, cancellation)
    hooks.sequenceStepEnded = sequences.sequenceStepEnded
    hooks.sequenceStepRunning = sequences.sequenceStepRunning
    const reading = makeReading(q)
    const { findJob } = reading

    yield* makeRecovery(q, order, finished, sequences).recover

    // ---- Manager events: admission blocks for jobs waiting to start ----

    yield* makeInstanceEvents(q, order).follow

    // ---- Lifetime ----

    for (let i = 0; i < concurrency; i++) yield* lanes.startLane
    // The first sample after one interval (Effect.schedule waits first): a job shorter than that costs no sample.
    yield* Effect.forkScoped(Effect.schedule(watching.sampleBusyInstances, Schedule.spaced(snapshotInterval)))

    yield* Effect.addFinalizer(() => makeShutdown(q, finished).shutdown)

    const subscribe = (filter: EventFilter, subscribeOptions?: { readonly buffer?: number }) =>
      hub.subscribe(filter, subscribeOptions?.buffer ?? subscriberBuffer)

    /** A job's events end after the event that finished it (at once if it has finished). */
    const events = (id: JobId): Stream.Stream<JobEvent> => jobEventsUntilEnd(subscribe, findJob, id)

    return JobQueue.of({
      submit: submission.submit,
      reorder: order.reorder,
      cancel: cancellation.cancel,
      get: findJob,
      wait: reading.wait,
      pending: Effect.sync(() => order.pendingInOrder().map((e) => e.job)),
      running: reading.running,
      history: reading.recentHistory,
      stats: reading.stats,
      logs: reading.logs,
      submitSequence: sequences.submitSequence,
      cancelSequence: sequences.cancelSequence,
      getSequence: sequences.getSequence,
      waitSequence: sequences.waitSequence,
      subscribe,
      events,
      sequenceEvents: (sequence) => hub.events({ _tag: "sequence", sequence }, subscriberBuffer),
      allEvents: hub.events({ _tag: "all" }, subscriberBuffer),
    })
  })

/** The job queue over the PluginManager in context; journaled when a JobJournal is provided too. Closing it shuts the queue down cleanly. */
export const JobQueueLive = (options: JobQueueOptions = {}): Layer.Layer<JobQueue, StoreUnavailable, PluginManager> =>
  Layer.scoped(JobQueue, makeJobQueue(options))
