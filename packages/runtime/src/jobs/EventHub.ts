import { Chunk, Effect, Option, Stream, type Scope } from "effect"
import { isTerminal, type Job, type JobEvent, type JobId, type SequenceId } from "@plinth/domain"
import type { EventFilter, EventSubscription } from "./JobQueue.js"

/*
 * One publisher, many subscribers (issue 9 §3). Each subscriber gets its own
 * bounded mailbox and a drop counter: `publish` is a synchronous append to
 * each matching subscriber's mailbox and never waits, so a subscriber that
 * stops reading loses only its own events. Subscribers are indexed by what
 * they follow, so an event costs only the subscribers it concerns.
 *
 * A reader that found its mailbox empty is woken by the next event (its
 * fiber is scheduled, it does not run at once) and then takes everything
 * that arrived meanwhile as one chunk. A subscriber to all events is woken
 * at most once per WAKE_INTERVAL_MILLIS while events keep coming (sooner
 * when its mailbox is half full, so the pause costs it no drops): on a busy
 * queue each event would otherwise wake each such reader, and ten readers
 * took two thirds of the queue's time. A subscriber to one job or sequence
 * gets few events and is woken at each; so is a quiet subscriber to all.
 */

/** The shortest time between two wake-ups of a subscriber to all events while events keep coming. */
const WAKE_INTERVAL_MILLIS = 5

interface Subscriber {
  /** Events held unread, oldest first; at most `capacity`. */
  held: Array<JobEvent>
  readonly capacity: number
  dropped: number
  closed: boolean
  /** Set while the reader waits on an empty mailbox. */
  wake: (() => void) | undefined
  /** Woken at every event (one job's or sequence's subscribers), not at most once per interval. */
  readonly eager: boolean
  /** When its reader was last woken (performance.now()). */
  wokenAt: number
}

export interface EventHub {
  readonly publish: (event: JobEvent) => void
  readonly subscribe: (filter: EventFilter, buffer: number) => Effect.Effect<EventSubscription, never, Scope.Scope>
  /** Ends every subscription (their streams end). */
  readonly shutdown: Effect.Effect<void>
  /** How many subscribers there are now. */
  readonly size: () => number
}

const wakeNow = (subscriber: Subscriber, now: number) => {
  const wake = subscriber.wake
  if (wake === undefined) return
  subscriber.wake = undefined
  subscriber.wokenAt = now
  wake()
}

const close = (subscriber: Subscriber) => {
  subscriber.closed = true
  const wake = subscriber.wake
  subscriber.wake = undefined
  wake?.()
}

/** Everything held (the stream's next chunk), else waits for the next event; fails with None once closed and empty (the stream ends). */
const takeHeld = (subscriber: Subscriber): Effect.Effect<Chunk.Chunk<JobEvent>, Option.Option<never>> =>
  Effect.suspend(() => {
    if (subscriber.held.length > 0) {
      const batch = subscriber.held
      subscriber.held = []
      return Effect.succeed(Chunk.unsafeFromArray(batch))
    }
    if (subscriber.closed) return Effect.fail(Option.none())
    return Effect.async<Chunk.Chunk<JobEvent>, Option.Option<never>>((resume) => {
      // Resumed with a fresh take: it runs when the reader's fiber does, and takes what arrived by then.
      subscriber.wake = () => resume(takeHeld(subscriber))
      return Effect.sync(() => {
        subscriber.wake = undefined
      })
    })
  })

export const makeEventHub = (): EventHub => {
  const all = new Set<Subscriber>()
  const byJob = new Map<string, Set<Subscriber>>()
  const bySequence = new Map<string, Set<Subscriber>>()
  let count = 0
  let closed = false
  /** Readers of all events due a wake-up at the end of the interval; one timer for them all. */
  const due = new Set<Subscriber>()
  let timer: ReturnType<typeof setTimeout> | undefined

  const wakeDue = () => {
    timer = undefined
    const now = performance.now()
    for (const subscriber of due) wakeNow(subscriber, now)
    due.clear()
  }

  /** The time of the event being published, read once per event and only when a reader waits (-1: not read yet). */
  let publishedAt = -1

  const deliver = (subscriber: Subscriber, event: JobEvent) => {
    if (subscriber.held.length >= subscriber.capacity) {
      subscriber.dropped++
      return
    }
    subscriber.held.push(event)
    if (subscriber.wake === undefined) return
    const now = publishedAt < 0 ? (publishedAt = performance.now()) : publishedAt
    if (subscriber.eager || now - subscriber.wokenAt >= WAKE_INTERVAL_MILLIS || subscriber.held.length * 2 >= subscriber.capacity) {
      due.delete(subscriber)
      return wakeNow(subscriber, now)
    }
    if (due.has(subscriber)) return
    due.add(subscriber)
    timer ??= setTimeout(wakeDue, Math.max(0, WAKE_INTERVAL_MILLIS - (now - subscriber.wokenAt)))
  }

  const offer = (subscribers: Set<Subscriber> | undefined, event: JobEvent) => {
    if (subscribers === undefined) return
    for (const subscriber of subscribers) deliver(subscriber, event)
  }

  const publish = (event: JobEvent) => {
    if (closed || count === 0) return
    publishedAt = -1
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
    if (set.delete(subscriber)) count--
    if (set.size === 0 && filter._tag !== "all") (filter._tag === "job" ? byJob : bySequence).delete(filter._tag === "job" ? filter.job : filter.sequence)
  }

  const subscribe = (filter: EventFilter, buffer: number): Effect.Effect<EventSubscription, never, Scope.Scope> =>
    Effect.acquireRelease(
      Effect.sync(() => {
        const subscriber: Subscriber = {
          held: [],
          capacity: Math.max(1, Math.floor(buffer)),
          dropped: 0,
          closed: false,
          wake: undefined,
          eager: filter._tag !== "all",
          wokenAt: Number.NEGATIVE_INFINITY,
        }
        if (closed) close(subscriber)
        else {
          indexOf(filter).add(subscriber)
          count++
        }
        return subscriber
      }),
      (subscriber) =>
        Effect.sync(() => {
          if (!subscriber.closed) remove(filter, subscriber)
          close(subscriber)
        }),
    ).pipe(
      Effect.map((subscriber) => ({
        events: Stream.repeatEffectChunkOption(takeHeld(subscriber)),
        dropped: Effect.sync(() => subscriber.dropped),
      })),
    )

  const shutdown = Effect.sync(() => {
    closed = true
    const subscribers = [...all, ...[...byJob.values()].flatMap((s) => [...s]), ...[...bySequence.values()].flatMap((s) => [...s])]
    all.clear()
    byJob.clear()
    bySequence.clear()
    count = 0
    for (const subscriber of subscribers) close(subscriber)
  })

  return { publish, subscribe, shutdown, size: () => count }
}

/** Filters as the queue's callers write them. */
export const jobFilter = (job: JobId): EventFilter => ({ _tag: "job", job })
export const sequenceFilter = (sequence: SequenceId): EventFilter => ({ _tag: "sequence", sequence })

/**
 * One job's events from now on, ending after the event that finished it, or
 * at once when `find` says it has finished already (the subscription is made
 * first, so nothing falls between the look and the listening).
 */
export const jobEventsUntilEnd = (
  subscribe: (filter: EventFilter) => Effect.Effect<EventSubscription, never, Scope.Scope>,
  find: (job: JobId) => Effect.Effect<Option.Option<Job>>,
  id: JobId,
): Stream.Stream<JobEvent> =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      const subscription = yield* subscribe({ _tag: "job", job: id })
      const now = yield* find(id)
      if (Option.isSome(now) && isTerminal(now.value.status)) return Stream.empty
      return subscription.events.pipe(Stream.takeUntil((event) => event._tag === "stateChanged" && isTerminal(event.to)))
    }),
  )
