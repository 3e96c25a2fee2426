import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import { makeFairGate } from "../src/manager/FairGate.js"

/** Lets forked fibers run up to their next wait. */
const settle = Effect.repeatN(Effect.yieldNow(), 20)

describe("FairGate", () => {
  it.effect("runs at most `permits` at once and hands freed permits to the oldest waiter; a waiter that gives up leaves the line", () =>
    Effect.gen(function* () {
      const gate = makeFairGate(2, 10)
      const order: Array<number> = []
      const release = yield* Deferred.make<void>()
      const job = (n: number) => gate.run(Effect.zipRight(Effect.sync(() => order.push(n)), Deferred.await(release)), () => "full" as const)
      const fibers = []
      for (let n = 0; n < 6; n++) {
        fibers.push(yield* Effect.fork(job(n)))
        yield* settle
      }
      expect(order).toEqual([0, 1])
      expect([gate.active(), gate.waiting()]).toEqual([2, 4])
      // Number 3 gives up while waiting.
      yield* Fiber.interrupt(fibers[3]!)
      expect(gate.waiting()).toBe(3)
      yield* Deferred.succeed(release, undefined)
      for (const [i, fiber] of fibers.entries()) if (i !== 3) yield* Fiber.join(fiber)
      expect(order).toEqual([0, 1, 2, 4, 5])
      expect([gate.active(), gate.waiting()]).toEqual([0, 0])
    }),
  )

  it.effect("refuses at once, with the caller's error, when the line is full", () =>
    Effect.gen(function* () {
      const gate = makeFairGate(1, 1)
      const hold = yield* Deferred.make<void>()
      const a = yield* Effect.fork(gate.run(Deferred.await(hold), () => "full" as const))
      yield* settle
      const b = yield* Effect.fork(gate.run(Effect.void, () => "full" as const))
      yield* settle
      expect(yield* Effect.flip(gate.run(Effect.void, () => "full" as const))).toBe("full")
      yield* Deferred.succeed(hold, undefined)
      yield* Fiber.join(a)
      yield* Fiber.join(b)
      expect(gate.active()).toBe(0)
    }),
  )
})
