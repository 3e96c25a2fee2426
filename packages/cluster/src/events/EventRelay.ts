import { Chunk, Context, Deferred, Effect, Either, Layer, Queue, Schedule, Schema, Stream, type Scope } from "effect"
import * as SqlClient from "@effect/sql/SqlClient"
import pg from "pg"
import { JobEvent } from "@plinth/domain"
import type { EventHub } from "@plinth/runtime"

/*
 * The queue's events across the cluster: each runner sends what its own
 * queue says (and each client what it decides, such as a submission) as
 * Postgres notifications on one channel, batched, through the SQL client's
 * pool. Every process listens on that channel on a connection of its own,
 * opened again after the database restarted (the SQL client's own `listen`
 * does not recover from that), and publishes what it hears into its own
 * EventHub, so `events`, `allEvents` and `subscribe` behave as on one host (issue 9 §3:
 * bounded buffers, drop counters, a publisher that never waits).
 *
 * Notifications are not durable: events sent while a process was not
 * listening (a database restart) are not replayed. Job state is: every
 * reader of a job's state (`get`, `wait`) reads its row, and `wait` does not
 * depend on hearing the end.
 */

export const EVENTS_CHANNEL = "plinth_job_events"

/** Postgres refuses notifications of 8,000 bytes or more; batches stay well under. */
const MAX_PAYLOAD_BYTES = 7_000
/** Events waiting to be sent while the database is away; the oldest are dropped past this. */
const OUTBOX_CAPACITY = 20_000

const encodeEvent = Schema.encodeSync(JobEvent)
const decodeEvents = Schema.decodeUnknownEither(Schema.parseJson(Schema.Array(JobEvent)))

/** Splits encoded events into payloads under MAX_PAYLOAD_BYTES; an event too large alone is dropped (its job's row still says everything). */
export const toPayloads = (events: ReadonlyArray<JobEvent>): ReadonlyArray<string> => {
  const payloads: Array<string> = []
  let current: Array<string> = []
  let size = 2
  for (const event of events) {
    const text = JSON.stringify(encodeEvent(event))
    if (text.length + 2 > MAX_PAYLOAD_BYTES) continue
    if (size + text.length + 1 > MAX_PAYLOAD_BYTES) {
      payloads.push(`[${current.join(",")}]`)
      current = []
      size = 2
    }
    current.push(text)
    size += text.length + 1
  }
  if (current.length > 0) payloads.push(`[${current.join(",")}]`)
  return payloads
}

const retryForever = Schedule.exponential("100 millis").pipe(Schedule.union(Schedule.spaced("1 second")))

/** A sender of events: `send` never waits; a fiber in the scope sends batches. */
export interface EventSender {
  readonly send: (event: JobEvent) => void
}

export class ClusterEvents extends Context.Tag("@plinth/cluster/ClusterEvents")<ClusterEvents, EventSender>() {}

export const makeEventSender: Effect.Effect<EventSender, never, Scope.Scope | SqlClient.SqlClient> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const outbox = yield* Queue.sliding<JobEvent>(OUTBOX_CAPACITY)
  // Through the client's pool, which opens a new connection after the database restarted.
  const sendBatch = (events: Chunk.Chunk<JobEvent>) =>
    Effect.forEach(
      toPayloads(Chunk.toReadonlyArray(events)),
      (payload) => Effect.retry(sql`SELECT pg_notify(${EVENTS_CHANNEL}, ${payload})`, retryForever),
      { discard: true },
    )
  yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.takeBetween(outbox, 1, 500), sendBatch)))
  return { send: (event: JobEvent) => void Queue.unsafeOffer(outbox, event) }
})

/** Every batch of events any process of the cluster sends, for as long as the stream runs; `listening` runs each time LISTEN has taken. */
const heard = (database: string, listening: Effect.Effect<void>): Stream.Stream<ReadonlyArray<JobEvent>, unknown> =>
  Stream.asyncPush<ReadonlyArray<JobEvent>, unknown>((emit) =>
    Effect.tap(
      Effect.acquireRelease(
        Effect.tryPromise(async () => {
          const client = new pg.Client({ connectionString: database })
          const lost = (error: unknown) => emit.fail(error ?? new Error("the listening connection ended"))
          client.on("error", lost)
          client.on("end", () => lost(undefined))
          client.on("notification", (message) => {
            if (message.channel !== EVENTS_CHANNEL || message.payload === undefined) return
            const decoded = decodeEvents(message.payload)
            if (Either.isRight(decoded)) emit.single(decoded.right)
          })
          await client.connect()
          await client.query(`LISTEN ${EVENTS_CHANNEL}`)
          return client
        }),
        (client) => Effect.promise(() => client.end().catch(() => undefined)),
      ),
      () => listening,
    ),
  )

/**
 * Publishes every event the cluster sends into `hub`, from now until the
 * scope closes. Returns once the first LISTEN has taken, so that a subscriber
 * who subscribes after this returns hears every event sent after that.
 */
export const relayInto = (database: string, hub: EventHub): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    const listening = yield* Deferred.make<void>()
    yield* Effect.forkScoped(
      Stream.runForEach(Stream.retry(heard(database, Deferred.succeed(listening, undefined)), retryForever), (events) =>
        Effect.sync(() => {
          for (const event of events) hub.publish(event)
        }),
      ),
    )
    // The database answered the migrations a moment ago; should it be gone now, the queue starts anyway and hears events once it is back.
    yield* Effect.timeoutOption(Deferred.await(listening), "10 seconds")
  })

export const ClusterEventsLive = Layer.scoped(ClusterEvents, makeEventSender)
