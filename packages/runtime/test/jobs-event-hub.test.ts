import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Stream } from "effect"
import type { JobEvent, JobId, SequenceId } from "@plinth/domain"
import { makeEventHub } from "../src/jobs/EventHub.js"

const event = (i: number, job = `job-${i}`, sequence?: string): JobEvent =>
  ({ _tag: "stateChanged", job: job as JobId, at: i, from: "pending", to: "running", ...(sequence !== undefined ? { sequence: sequence as SequenceId } : {}) }) as JobEvent

const ats = (events: ReadonlyArray<JobEvent>) => events.map((e) => e.at)
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i)

describe("EventHub", () => {
  it.scopedLive("a subscriber to all that never reads holds its first `buffer` events and counts the rest dropped, however long the shared log grows meanwhile", () =>
    Effect.gen(function* () {
      const hub = makeEventHub()
      const idle = yield* hub.subscribe({ _tag: "all" }, 100)
      const small = yield* hub.subscribe({ _tag: "all" }, 7)
      const reader = yield* hub.subscribe({ _tag: "all" }, 100)
      const reading = yield* Effect.fork(Stream.runCollect(Stream.take(reader.events, 5000)))
      for (let i = 0; i < 5000; i++) {
        hub.publish(event(i))
        if (i % 40 === 0) yield* Effect.yieldNow()
      }
      expect(ats(Chunk.toArray(yield* Fiber.join(reading)))).toEqual(range(0, 5000))
      expect(yield* reader.dropped).toBe(0)
      expect(yield* idle.dropped).toBe(4900)
      expect(yield* small.dropped).toBe(4993)
      expect(ats(Chunk.toArray(yield* Stream.runCollect(Stream.take(idle.events, 100))))).toEqual(range(0, 100))
      expect(ats(Chunk.toArray(yield* Stream.runCollect(Stream.take(small.events, 7))))).toEqual(range(0, 7))
      // Having read, each holds what came since, from a fresh bound.
      for (let i = 5000; i < 5010; i++) hub.publish(event(i))
      expect(ats(Chunk.toArray(yield* Stream.runCollect(Stream.take(small.events, 7))))).toEqual(range(5000, 5007))
      expect(yield* small.dropped).toBe(4996)
      expect(ats(Chunk.toArray(yield* Stream.runCollect(Stream.take(idle.events, 10))))).toEqual(range(5000, 5010))
      expect(yield* idle.dropped).toBe(4900)
    }),
  )

  it.scopedLive("ten readers of all events each get every event in order, with none dropped, when they keep up", () =>
    Effect.gen(function* () {
      const hub = makeEventHub()
      const readers = yield* Effect.forEach(range(0, 10), () => hub.subscribe({ _tag: "all" }, 100))
      const readings = yield* Effect.forEach(readers, (r) => Effect.fork(Stream.runCollect(Stream.take(r.events, 3000))))
      for (let i = 0; i < 3000; i++) {
        hub.publish(event(i))
        if (i % 3 === 2) yield* Effect.yieldNow()
      }
      for (const reading of readings) expect(ats(Chunk.toArray(yield* Fiber.join(reading)))).toEqual(range(0, 3000))
      for (const reader of readers) expect(yield* reader.dropped).toBe(0)
    }),
  )

  it.scopedLive("a quiet reader gets an event at once; one job's and one sequence's subscribers get only theirs", () =>
    Effect.gen(function* () {
      const hub = makeEventHub()
      const all = yield* hub.subscribe({ _tag: "all" }, 100)
      const onJob = yield* hub.subscribe({ _tag: "job", job: "a" as JobId }, 100)
      const onSequence = yield* hub.subscribe({ _tag: "sequence", sequence: "s" as SequenceId }, 100)
      const first = yield* Effect.fork(Stream.runHead(all.events))
      const jobs = yield* Effect.fork(Stream.runCollect(Stream.take(onJob.events, 2)))
      const steps = yield* Effect.fork(Stream.runCollect(Stream.take(onSequence.events, 2)))
      yield* Effect.sleep("20 millis")
      hub.publish(event(1, "a"))
      // Woken by the event itself, not by a timer: a few turns of the scheduler suffice.
      for (let i = 0; i < 5; i++) yield* Effect.yieldNow()
      const polled = yield* Fiber.poll(first)
      expect(polled._tag === "Some" && polled.value._tag === "Success" && polled.value.value._tag === "Some" && polled.value.value.value.at).toBe(1)
      hub.publish(event(2, "b", "s"))
      hub.publish(event(3, "a", "s"))
      expect(ats(Chunk.toArray(yield* Fiber.join(jobs)))).toEqual([1, 3])
      expect(ats(Chunk.toArray(yield* Fiber.join(steps)))).toEqual([2, 3])
    }),
  )

  it.scopedLive("closing a subscription or the hub ends its stream after what it held; a closed subscription counts no more drops", () =>
    Effect.gen(function* () {
      const hub = makeEventHub()
      const held = yield* Effect.scoped(
        Effect.gen(function* () {
          const subscription = yield* hub.subscribe({ _tag: "all" }, 2)
          hub.publish(event(1))
          hub.publish(event(2))
          hub.publish(event(3))
          return subscription
        }),
      )
      hub.publish(event(4))
      expect(yield* held.dropped).toBe(1)
      expect(ats(Chunk.toArray(yield* Stream.runCollect(held.events)))).toEqual([1, 2])
      expect(hub.size()).toBe(0)
      const waiting = yield* hub.subscribe({ _tag: "all" }, 100)
      const onJob = yield* hub.subscribe({ _tag: "job", job: "a" as JobId }, 100)
      const reading = yield* Effect.fork(Stream.runCollect(waiting.events))
      const following = yield* Effect.fork(Stream.runCollect(onJob.events))
      yield* Effect.sleep("10 millis")
      yield* hub.shutdown
      expect(Chunk.toArray(yield* Fiber.join(reading))).toEqual([])
      expect(Chunk.toArray(yield* Fiber.join(following))).toEqual([])
    }),
  )

  it.scopedLive("a stream of events subscribes when it starts and unsubscribes when it ends or is interrupted", () =>
    Effect.gen(function* () {
      const hub = makeEventHub()
      const stream = hub.events({ _tag: "all" }, 100)
      expect(hub.size()).toBe(0)
      const two = yield* Effect.fork(Stream.runCollect(Stream.take(stream, 2)))
      const endless = yield* Effect.fork(Stream.runDrain(stream))
      const onSequence = yield* Effect.fork(Stream.runCollect(Stream.take(hub.events({ _tag: "sequence", sequence: "s" as SequenceId }, 100), 1)))
      yield* Effect.sleep("10 millis")
      expect(hub.size()).toBe(3)
      hub.publish(event(1))
      hub.publish(event(2, "b", "s"))
      expect(ats(Chunk.toArray(yield* Fiber.join(two)))).toEqual([1, 2])
      expect(ats(Chunk.toArray(yield* Fiber.join(onSequence)))).toEqual([2])
      expect(hub.size()).toBe(1)
      yield* Fiber.interrupt(endless)
      expect(hub.size()).toBe(0)
    }),
  )
})
