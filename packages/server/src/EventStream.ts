import { HttpServerResponse } from "@effect/platform"
import { Context, Duration, Effect, Layer, Ref, Schedule, Schema, Stream } from "effect"
import { JobEvent, ManagerEvent } from "@plinth/domain"
import type { JobQueue, PluginManagerService } from "@plinth/runtime"

/*
 * `GET /api/events`: Server-Sent Events over the queue's events and the
 * manager's. Each client gets its own bounded subscriptions, made before the
 * first byte is sent (so a client that saw the opening comment misses
 * nothing after it): a slow browser loses events (the queue counts them),
 * never holds up the host. A closed connection interrupts the response's
 * stream, which closes the subscriptions.
 */

export interface EventStreamOptions {
  /** Events each client may hold unread before it drops; default 100. */
  readonly buffer?: number
  /** How often a comment keeps the connection open through proxies; default 15 s. */
  readonly pingInterval?: Duration.DurationInput
}

/** How many event streams are open now. */
export class SseConnections extends Context.Tag("@plinth/server/SseConnections")<SseConnections, Ref.Ref<number>>() {}

export const SseConnectionsLive = Layer.effect(SseConnections, Ref.make(0))

const encodeJobEvent = Schema.encodeSync(JobEvent)
const encodeManagerEvent = Schema.encodeSync(ManagerEvent)
const encoder = new TextEncoder()

/** One event: `data` is one line of JSON (JSON.stringify escapes every newline). */
export const sseEventText = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`
const frame = sseEventText

export const eventStream = (
  queue: JobQueue["Type"],
  manager: PluginManagerService,
  connections: Ref.Ref<number>,
  options: EventStreamOptions = {},
): Stream.Stream<string> => {
  const buffer = options.buffer ?? 100
  const ping = Duration.decode(options.pingInterval ?? Duration.seconds(15))
  return Stream.unwrapScoped(
    Effect.gen(function* () {
      yield* Effect.acquireRelease(Ref.update(connections, (n) => n + 1), () => Ref.update(connections, (n) => n - 1))
      const jobs = yield* queue.subscribe({ _tag: "all" }, { buffer })
      const instances = yield* manager.subscribe
      const jobFrames = Stream.map(jobs.events, (event) => frame("job", encodeJobEvent(event)))
      // The manager's subscription is unbounded: drained at once into a bounded buffer that drops the newest.
      const instanceFrames = Stream.fromQueue(instances).pipe(
        Stream.buffer({ capacity: buffer, strategy: "dropping" }),
        Stream.map((event) => frame("instance", encodeManagerEvent(event))),
      )
      const pings = Stream.repeatEffectWithSchedule(Effect.succeed(": ping\n\n"), Schedule.spaced(ping)).pipe(Stream.drop(1))
      return Stream.concat(Stream.make(": connected\n\n"), Stream.mergeAll([jobFrames, instanceFrames, pings], { concurrency: "unbounded" }))
    }),
  )
}

export const eventStreamResponse = (
  queue: JobQueue["Type"],
  manager: PluginManagerService,
  connections: Ref.Ref<number>,
  options: EventStreamOptions = {},
) =>
  HttpServerResponse.stream(
    Stream.map(eventStream(queue, manager, connections, options), (text) => encoder.encode(text)),
    { contentType: "text/event-stream", headers: { "cache-control": "no-store", "x-accel-buffering": "no" } },
  )
