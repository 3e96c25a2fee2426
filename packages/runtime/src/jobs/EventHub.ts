import { Effect, Queue, Stream, type Scope } from "effect"
import type { JobEvent, JobId, SequenceId } from "@plinth/domain"
import type { EventFilter, EventSubscription } from "./JobQueue.js"

/*
 * One publisher, many subscribers (issue 9 §3). Each subscriber gets its own
 * bounded dropping queue and a drop counter: `publish` is a synchronous
 * offer to each matching subscriber and never waits, so a subscriber that
 * stops reading loses only its own events. Subscribers are indexed by what
 * they follow, so an event costs only the subscribers it concerns.
 */

interface Subscriber {
  readonly queue: Queue.Queue<JobEvent>
  dropped: number
}

export interface EventHub {
  readonly publish: (event: JobEvent) => void
  readonly subscribe: (filter: EventFilter, buffer: number) => Effect.Effect<EventSubscription, never, Scope.Scope>
  /** Ends every subscription (their streams end). */
  readonly shutdown: Effect.Effect<void>
  /** How many subscribers there are now. */
  readonly size: () => number
}

export const makeEventHub = (): EventHub => {
  const all = new Set<Subscriber>()
  const byJob = new Map<string, Set<Subscriber>>()
  const bySequence = new Map<string, Set<Subscriber>>()
  let closed = false

  const offer = (subscribers: Set<Subscriber> | undefined, event: JobEvent) => {
    if (subscribers === undefined) return
    for (const subscriber of subscribers) if (!subscriber.queue.unsafeOffer(event)) subscriber.dropped++
  }

  const publish = (event: JobEvent) => {
    if (closed) return
    offer(all, event)
    if (byJob.size > 0) offer(byJob.get(event.job), event)
    if (event.sequence !== undefined && bySequence.size > 0) offer(bySequence.get(event.sequence), event)
  }

  const indexOf = (filter: EventFilter): Set<Subscriber> => {
    if (filter._tag === "all") return all
    const [index, key] = filter._tag === "job" ? [byJob, filter.job as string] : [bySequence, filter.sequence as string]
    let set = index.get(key)
    if (set === undefined) index.set(key, (set = new Set()))
    return set
  }

  const remove = (filter: EventFilter, subscriber: Subscriber) => {
    const set = indexOf(filter)
    set.delete(subscriber)
    if (set.size === 0 && filter._tag !== "all") (filter._tag === "job" ? byJob : bySequence).delete(filter._tag === "job" ? filter.job : filter.sequence)
  }

  const subscribe = (filter: EventFilter, buffer: number): Effect.Effect<EventSubscription, never, Scope.Scope> =>
    Effect.acquireRelease(
      Effect.gen(function* () {
        const queue = yield* Queue.dropping<JobEvent>(Math.max(1, Math.floor(buffer)))
        const subscriber: Subscriber = { queue, dropped: 0 }
        if (closed) yield* Queue.shutdown(queue)
        else indexOf(filter).add(subscriber)
        return subscriber
      }),
      (subscriber) => Effect.zipRight(Effect.sync(() => remove(filter, subscriber)), Queue.shutdown(subscriber.queue)),
    ).pipe(
      Effect.map((subscriber) => ({
        events: Stream.fromQueue(subscriber.queue),
        dropped: Effect.sync(() => subscriber.dropped),
      })),
    )

  const shutdown = Effect.suspend(() => {
    closed = true
    const subscribers = [...all, ...[...byJob.values()].flatMap((s) => [...s]), ...[...bySequence.values()].flatMap((s) => [...s])]
    all.clear()
    byJob.clear()
    bySequence.clear()
    return Effect.forEach(subscribers, (s) => Queue.shutdown(s.queue), { discard: true })
  })

  const size = () => all.size + [...byJob.values()].reduce((n, s) => n + s.size, 0) + [...bySequence.values()].reduce((n, s) => n + s.size, 0)

  return { publish, subscribe, shutdown, size }
}

/** Filters as the queue's callers write them. */
export const jobFilter = (job: JobId): EventFilter => ({ _tag: "job", job })
export const sequenceFilter = (sequence: SequenceId): EventFilter => ({ _tag: "sequence", sequence })
