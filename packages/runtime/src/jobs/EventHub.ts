import { Channel, Chunk, Effect, Option, Stream, type Scope } from "effect"
import { isTerminal, type Job, type JobEvent, type JobId, type SequenceId } from "@plinth/domain"
import type { EventFilter, EventSubscription } from "./JobQueue.js"

/*
 * One publisher, many subscribers (issue 9 §3). Each subscriber has its own
 * bound (it holds at most that many unread events) and a drop counter; the
 * publisher never waits, so a subscriber that stops reading loses only its
 * own events.
 *
 * Subscribers to all events share one log, each with a cursor into it: a
 * publish is one append whatever their number. What a subscriber holds is the
 * log from its cursor, up to its bound; what lies beyond the bound when it
 * next takes is what it dropped. The log is cut from the front now and then;
 * a subscriber so far behind that it is full is first given its own copy of
 * what it holds (from then on it only counts drops), so the log stays short
 * however long a subscriber does not read.
 *
 * Subscribers to one job or sequence get few events: each has its own
 * mailbox, indexed by what it follows, and is woken at each event.
 *
 * A reader that found nothing to take waits; it is woken with what it holds
 * by then, taken for it at once (its fiber is scheduled, it does not run at
 * once, and meanwhile its bound starts afresh). Waiting readers of all events
 * are woken together: at once on a quiet queue, else at most once per
 * WAKE_INTERVAL_MILLIS, or sooner when one of them is full. Each wake costs a
 * reader's fiber a turn through its stream, far more than the events it
 * carries: on a busy queue, ten readers woken at each event took two thirds
 * of the queue's time, and ten woken (each on its own) at half their bound
 * still about a quarter. Taking for a reader at the wake, not when its fiber
 * runs, lets it wait for its whole bound without dropping what comes in
 * between. Readers at one cursor are woken with one shared chunk.
 */

/** The shortest time between two wake-ups of the readers of all events while events keep coming (unless one is full). */
const WAKE_INTERVAL_MILLIS = 5
/** The log is cut once it has grown by this many events (or by its own length, when longer) since it was last cut. */
const COMPACT_STEP = 1024

type Chunks = Channel.Channel<Chunk.Chunk<JobEvent>>

interface Opened {
  readonly chunks: Chunks
  readonly dropped: () => number
  readonly close: () => void
}

type Next = Effect.Effect<Chunk.Chunk<JobEvent> | undefined>

/** Resumes a waiting reader with its next chunk, or with undefined: its stream ends. */
type Wake = (next: Next) => void

/** A subscriber to one job or sequence: a mailbox of its own. */
interface Follower {
  /** Events held unread, oldest first; at most `capacity`. */
  held: Array<JobEvent>
  readonly capacity: number
  dropped: number
  closed: boolean
  /** Set while the reader waits (its mailbox is empty then). */
  wake: Wake | undefined
}

/** A subscriber to all events: a cursor into the shared log. */
interface Reader {
  /** The absolute index (in the log's numbering) of its next unread event. */
  cursor: number
  readonly capacity: number
  /** Drops counted so far; more may be due beyond its bound, counted when it next takes. */
  dropped: number
  /** What it holds, copied out of the log when it fell a full bound behind (or closed): past `cursor` it holds nothing more and drops all. */
  own: Array<JobEvent> | undefined
  closed: boolean
  /** Set while the reader waits (it holds nothing then). */
  wake: Wake | undefined
}

export interface EventHub {
  readonly publish: (event: JobEvent) => void
  readonly subscribe: (filter: EventFilter, buffer: number) => Effect.Effect<EventSubscription, never, Scope.Scope>
  /** The events of a subscription made when the stream starts, and ended with it. */
  readonly events: (filter: EventFilter, buffer: number) => Stream.Stream<JobEvent>
  /** Ends every subscription (their streams end). */
  readonly shutdown: Effect.Effect<void>
  /** How many subscribers there are now. */
  readonly size: () => number
}

const ended: Next = Effect.succeed(undefined)

const nextOf = (batch: Array<JobEvent> | undefined): Next => (batch === undefined ? ended : Effect.succeed(Chunk.unsafeFromArray(batch)))

/**
 * The chunks of what `take` returns: an empty array means nothing now (the
 * reader waits, via `await_`, until woken with a chunk), undefined that it
 * has ended. A loop of channel steps of its own rather than
 * `repeatEffectChunkOption`: a busy reader goes through it once per wake,
 * and this does less per turn.
 */
const chunksOf = (
  take: () => Array<JobEvent> | undefined,
  await_: (wake: Wake) => void,
  unwait: () => void,
): Chunks => {
  const cancel = Effect.sync(unwait)
  const wait = Effect.async<Chunk.Chunk<JobEvent> | undefined>((resume) => {
    await_(resume)
    return cancel
  })
  const next: Next = Effect.suspend(() => {
    const batch = take()
    if (batch === undefined) return ended
    return batch.length > 0 ? Effect.succeed(Chunk.unsafeFromArray(batch)) : wait
  })
  const loop: Chunks = Channel.flatMap(Channel.fromEffect(next), (chunk) =>
    chunk === undefined ? Channel.void : Channel.flatMap(Channel.write(chunk), () => loop),
  )
  return loop
}

const removeFrom = <A>(array: Array<A>, item: A): boolean => {
  const i = array.indexOf(item)
  if (i < 0) return false
  array[i] = array[array.length - 1]!
  array.pop()
  return true
}

const noEvents: Array<JobEvent> = []

export const makeEventHub = (): EventHub => {
  let count = 0
  let closed = false

  // ---- Subscribers to all events ----

  const readers: Array<Reader> = []
  /** Events from absolute index `base` on. */
  let log: Array<JobEvent> = []
  let base = 0
  /** The log's length at which it is next cut. */
  let compactAt = COMPACT_STEP
  /** Readers waiting for an event. */
  let waiting: Array<Reader> = []
  /** The absolute index at which a waiting reader is full: they are woken once the log reaches it. */
  let wakeIndex = Number.POSITIVE_INFINITY
  let timer: ReturnType<typeof setTimeout> | undefined
  /** When waiting readers were last woken (performance.now()). */
  let wokenAt = Number.NEGATIVE_INFINITY

  const head = () => base + log.length

  /** Drops due beyond the reader's bound, not yet counted. */
  const dueDrops = (reader: Reader) =>
    reader.closed ? 0 : reader.own !== undefined ? head() - reader.cursor : Math.max(0, head() - reader.cursor - reader.capacity)

  /** What the reader holds, now its own: the next chunk of its stream (empty: nothing; undefined: it has ended). */
  const takeReader = (reader: Reader): Array<JobEvent> | undefined => {
    let batch: Array<JobEvent>
    if (reader.own !== undefined) {
      batch = reader.own
      reader.own = undefined
      if (!reader.closed) reader.dropped += head() - reader.cursor
    } else if (reader.closed) {
      batch = noEvents
    } else {
      const from = reader.cursor - base
      const to = Math.min(log.length, from + reader.capacity)
      batch = from < to ? log.slice(from, to) : noEvents
      reader.dropped += log.length - to
    }
    if (!reader.closed) reader.cursor = head()
    if (batch.length > 0) return batch
    return reader.closed ? undefined : noEvents
  }

  const wakeReaders = () => {
    wakeIndex = Number.POSITIVE_INFINITY
    wokenAt = performance.now()
    const woken = waiting
    waiting = []
    // Readers at one cursor with one bound hold the same events: one chunk for them all.
    let shared: Next | undefined
    let sharedCursor = -1
    let sharedCapacity = -1
    for (const reader of woken) {
      const wake = reader.wake
      if (wake === undefined) continue
      reader.wake = undefined
      if (reader.own === undefined && reader.cursor === sharedCursor && reader.capacity === sharedCapacity && shared !== undefined) {
        reader.dropped += Math.max(0, head() - reader.cursor - reader.capacity)
        reader.cursor = head()
        wake(shared)
        continue
      }
      const from = reader.cursor
      const batch = takeReader(reader)
      if (batch !== undefined && batch.length === 0) {
        awaitReader(reader, wake)
        continue
      }
      const next = nextOf(batch)
      if (batch !== undefined && reader.own === undefined) {
        shared = next
        sharedCursor = from
        sharedCapacity = reader.capacity
      }
      wake(next)
    }
  }

  /** Left running when readers are woken sooner (one timer an interval, not one a wake): when it is early, it waits out the rest. */
  const onTimer = () => {
    timer = undefined
    if (waiting.length === 0) return
    const since = performance.now() - wokenAt
    if (since >= WAKE_INTERVAL_MILLIS) wakeReaders()
    else timer = setTimeout(onTimer, WAKE_INTERVAL_MILLIS - since)
  }

  /** Copies what the reader holds out of the log and counts its drops: from now on the log need not keep its events. */
  const detach = (reader: Reader) => {
    if (reader.own !== undefined) {
      reader.dropped += head() - reader.cursor
    } else {
      const from = reader.cursor - base
      reader.own = log.slice(from, Math.min(log.length, from + reader.capacity))
      reader.dropped += Math.max(0, log.length - from - reader.capacity)
    }
    reader.cursor = head()
  }

  /** Cuts the log before the first event a reader still needs, after detaching the readers a full bound behind. */
  const compact = () => {
    let keep = head()
    for (const reader of readers) {
      if (reader.own === undefined && head() - reader.cursor >= reader.capacity) detach(reader)
      if (reader.own === undefined && reader.cursor < keep) keep = reader.cursor
    }
    if (keep > base) {
      log = log.slice(keep - base)
      base = keep
    }
    compactAt = log.length + Math.max(COMPACT_STEP, log.length)
  }

  const awaitReader = (reader: Reader, wake: Wake) => {
    reader.wake = wake
    waiting.push(reader)
    const at = reader.cursor + reader.capacity
    if (at < wakeIndex) wakeIndex = at
  }

  const unwaitReader = (reader: Reader) => {
    reader.wake = undefined
    removeFrom(waiting, reader)
  }

  const publishToReaders = (event: JobEvent) => {
    log.push(event)
    if (waiting.length > 0) {
      if (base + log.length >= wakeIndex) return wakeReaders()
      if (timer === undefined) {
        // The first event since they waited: at once on a quiet queue, else at the end of the interval.
        const since = performance.now() - wokenAt
        if (since >= WAKE_INTERVAL_MILLIS) return wakeReaders()
        timer = setTimeout(onTimer, WAKE_INTERVAL_MILLIS - since)
      }
    }
    if (log.length >= compactAt) compact()
  }

  const closeReader = (reader: Reader) => {
    if (reader.closed) return
    if (readers.includes(reader)) detach(reader)
    reader.closed = true
    const wake = reader.wake
    if (wake === undefined) return
    unwaitReader(reader)
    wake(nextOf(takeReader(reader)))
  }

  // ---- Subscribers to one job or sequence ----

  const byJob = new Map<string, Array<Follower>>()
  const bySequence = new Map<string, Array<Follower>>()

  const deliver = (followers: Array<Follower> | undefined, event: JobEvent) => {
    if (followers === undefined) return
    for (const follower of followers) {
      const wake = follower.wake
      if (wake !== undefined) {
        follower.wake = undefined
        wake(Effect.succeed(Chunk.of(event)))
      } else if (follower.held.length < follower.capacity) follower.held.push(event)
      else follower.dropped++
    }
  }

  const takeFollower = (follower: Follower): Array<JobEvent> | undefined => {
    const batch = follower.held
    if (batch.length > 0) {
      follower.held = []
      return batch
    }
    return follower.closed ? undefined : noEvents
  }

  const closeFollower = (follower: Follower) => {
    follower.closed = true
    const wake = follower.wake
    follower.wake = undefined
    wake?.(ended)
  }

  // ----

  const publish = (event: JobEvent) => {
    if (closed || count === 0) return
    if (readers.length > 0) publishToReaders(event)
    if (byJob.size > 0) deliver(byJob.get(event.job), event)
    if (event.sequence !== undefined && bySequence.size > 0) deliver(bySequence.get(event.sequence), event)
  }

  const indexOf = (filter: EventFilter & { readonly _tag: "job" | "sequence" }) =>
    filter._tag === "job" ? { index: byJob, key: filter.job as string } : { index: bySequence, key: filter.sequence as string }

  /** A subscriber to all events, listening from now on: its chunks, its drops, and how to end it. */
  const openAll = (capacity: number): Opened => {
    const reader: Reader = { cursor: head(), capacity, dropped: 0, own: undefined, closed: false, wake: undefined }
    if (closed) reader.closed = true
    else {
      readers.push(reader)
      count++
    }
    return {
      chunks: chunksOf(
        () => takeReader(reader),
        (wake) => awaitReader(reader, wake),
        () => unwaitReader(reader),
      ),
      dropped: () => reader.dropped + dueDrops(reader),
      close: () => {
        closeReader(reader)
        if (removeFrom(readers, reader)) count--
        if (readers.length === 0) {
          log = []
          base = 0
          compactAt = COMPACT_STEP
        }
      },
    }
  }

  const openOne = (filter: EventFilter & { readonly _tag: "job" | "sequence" }, capacity: number): Opened => {
    const follower: Follower = { held: [], capacity, dropped: 0, closed: false, wake: undefined }
    if (closed) follower.closed = true
    else {
      const { index, key } = indexOf(filter)
      const followers = index.get(key)
      if (followers === undefined) index.set(key, [follower])
      else followers.push(follower)
      count++
    }
    return {
      chunks: chunksOf(
        () => takeFollower(follower),
        (wake) => {
          follower.wake = wake
        },
        () => {
          follower.wake = undefined
        },
      ),
      dropped: () => follower.dropped,
      close: () => {
        const { index, key } = indexOf(filter)
        const followers = index.get(key)
        if (followers !== undefined && removeFrom(followers, follower)) {
          count--
          if (followers.length === 0) index.delete(key)
        }
        closeFollower(follower)
      },
    }
  }

  const open = (filter: EventFilter, buffer: number): Opened => {
    const capacity = Math.max(1, Math.floor(buffer))
    return filter._tag === "all" ? openAll(capacity) : openOne(filter, capacity)
  }

  const subscribe = (filter: EventFilter, buffer: number): Effect.Effect<EventSubscription, never, Scope.Scope> =>
    Effect.map(
      Effect.acquireRelease(
        Effect.sync(() => open(filter, buffer)),
        (opened) => Effect.sync(opened.close),
      ),
      (opened) => ({ events: Stream.fromChannel(opened.chunks), dropped: Effect.sync(opened.dropped) }),
    )

  // The subscription made when the stream starts and ended with it: no scope to flatten the stream through (a layer each chunk would cross).
  const events = (filter: EventFilter, buffer: number): Stream.Stream<JobEvent> =>
    Stream.fromChannel(
      Channel.suspend(() => {
        const opened = open(filter, buffer)
        return Channel.ensuring(opened.chunks, Effect.sync(opened.close))
      }),
    )

  const shutdown = Effect.sync(() => {
    closed = true
    if (timer !== undefined) clearTimeout(timer)
    timer = undefined
    for (const reader of [...readers]) closeReader(reader)
    readers.length = 0
    waiting = []
    const followers = [...[...byJob.values()].flat(), ...[...bySequence.values()].flat()]
    byJob.clear()
    bySequence.clear()
    count = 0
    for (const follower of followers) closeFollower(follower)
    log = []
    base = 0
  })

  return { publish, subscribe, events, shutdown, size: () => count }
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
