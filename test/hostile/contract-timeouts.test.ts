import { rmSync } from "node:fs"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Stream } from "effect"
import { startInstance } from "@plinth/runtime"
import { setLongTimeout, timeoutMillisOf } from "../../packages/runtime/src/instance/Deadline.js"
import { buildCli, examplesWorkspace, plinth } from "../support/cli.js"
import { ContractLive, isAlive, once, pluginModule, tempRoot, workerPid, writeReviewedPlugin } from "./support/contract.js"

/*
 * Attack: an action that ignores interruption. A timed-out call leaves it
 * running until the grace period kills the worker; a call made meanwhile must
 * still end within its own timeout, which covers waiting for the cancellation
 * to settle and for the restart. And timeouts past setTimeout's 2^31 ms range
 * must not fire at once.
 */

const root = tempRoot("timeouts")
afterAll(() => rmSync(root, { recursive: true, force: true }))

const source = pluginModule(`
  stuck: action({ description: "ignores interruption", input: Schema.Struct({}), output: Schema.Number,
    handler: () => Effect.as(Effect.uninterruptible(Effect.sleep(Duration.seconds(60))), 1) }),
  slow: action({ description: "waits, interruptibly", input: Schema.Struct({ millis: Schema.Number }), output: Schema.Number,
    handler: ({ millis }) => Effect.as(Effect.sleep(Duration.millis(millis)), millis) }),
  drip: streaming({ description: "one number per gap", input: Schema.Struct({ gapMillis: Schema.Number, count: Schema.Number }), output: Schema.Number,
    stream: ({ gapMillis, count }) => Stream.mapEffect(Stream.range(1, count), (n) => Effect.as(Effect.sleep(Duration.millis(gapMillis)), n)) }),
  pid: action({ description: "the worker's pid", input: Schema.Struct({}), output: Schema.Number, handler: () => Effect.sync(() => process.pid) }),
`)

const reviewed = once(writeReviewedPlugin(root, "stubborn", source))

/** How long an effect took, with its outcome. */
const timed = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const started = Date.now()
    const outcome = yield* Effect.either(effect)
    return { outcome, millis: Date.now() - started }
  })

describe("hostile: a call that will not stop", () => {
  it.scopedLive("the next call's timeout covers waiting for the cancelled call to settle and for the restart", () =>
    Effect.gen(function* () {
      const { plugin, locked } = yield* reviewed
      const instance = yield* startInstance({ plugin, locked, interruptGrace: "4 seconds" })
      const firstPid = yield* workerPid(instance)

      const stuck = yield* timed(instance.invoke("stuck", {}, { timeout: "200 millis" }))
      expect(stuck.outcome).toMatchObject({ left: { _tag: "InvokeTimeout", action: "stuck", timeoutMillis: 200 } })
      expect(stuck.millis).toBeLessThan(1000)

      // The stuck call holds the worker until the grace period ends (4 s); these must not wait for it.
      const next = yield* timed(instance.invoke("pid", {}, { timeout: "1 second" }))
      expect(next.outcome).toMatchObject({ left: { _tag: "InvokeTimeout", action: "pid", timeoutMillis: 1000 } })
      expect(next.millis).toBeGreaterThanOrEqual(950)
      expect(next.millis).toBeLessThan(1800)
      const streamed = yield* timed(Stream.runDrain(instance.stream("drip", { gapMillis: 10, count: 3 }, { timeout: "1 second" })))
      expect(streamed.outcome).toMatchObject({ left: { _tag: "InvokeTimeout", action: "drip", timeoutMillis: 1000 } })
      expect(streamed.millis).toBeLessThan(1800)

      // Without a timeout a call waits for the worker to be killed and restarted, and runs on the new one.
      const secondPid = yield* workerPid(instance)
      expect(secondPid).not.toBe(firstPid)
      expect(isAlive(firstPid)).toBe(false)
      expect(yield* instance.invoke("slow", { millis: 10 }, { timeout: "1 second" })).toBe(10)
    }).pipe(Effect.provide(ContractLive)),
  )
})

describe("timeouts of 2^31 ms and more", () => {
  it("are chained: a timer longer than one step fires after its whole delay, not after the first step", async () => {
    const started = Date.now()
    const fired = await new Promise<number>((resolve) => setLongTimeout(() => resolve(Date.now() - started), 300, 100))
    expect(fired).toBeGreaterThanOrEqual(290)
    let cancelledFired = false
    const cancel = setLongTimeout(() => (cancelledFired = true), 150, 100)
    setTimeout(cancel, 120)
    await new Promise((resolve) => setTimeout(resolve, 250))
    expect(cancelledFired).toBe(false)
    expect(timeoutMillisOf(Duration.infinity)).toBeUndefined()
    expect(timeoutMillisOf("597 hours")).toBe(597 * 3_600_000)
  })

  it.scopedLive("never fire at once: calls and streams with a 597 h timeout (past 2^31 ms) or an infinite one complete", () =>
    Effect.gen(function* () {
      const { plugin, locked } = yield* reviewed
      const instance = yield* startInstance({ plugin, locked, interruptGrace: "300 millis" })
      const long = Duration.hours(597)
      expect(Duration.toMillis(long)).toBeGreaterThan(2 ** 31)
      expect(yield* instance.invoke("slow", { millis: 300 }, { timeout: long })).toBe(300)
      expect(yield* instance.invoke("slow", { millis: 50 }, { timeout: Duration.infinity })).toBe(50)
      const items = yield* Stream.runCollect(instance.stream("drip", { gapMillis: 100, count: 3 }, { timeout: long, idleTimeout: long }))
      expect([...items]).toEqual([1, 2, 3])
      // Through a restart too (the slow path): the stuck call is killed after its grace period.
      yield* Effect.flip(instance.invoke("stuck", {}, { timeout: "100 millis" }))
      expect(yield* instance.invoke("slow", { millis: 300 }, { timeout: long })).toBe(300)
      // A short timeout still fires.
      expect(yield* Effect.flip(instance.invoke("slow", { millis: 5000 }, { timeout: "100 millis" }))).toMatchObject({ _tag: "InvokeTimeout" })
    }).pipe(Effect.provide(ContractLive)),
  )

  describe("through the CLI", () => {
    const workspace = () => examplesWorkspace("plinth-contract-cli-")
    beforeAll(() => {
      buildCli()
    })

    it("--timeout 597h lets a call finish (exit 0); --timeout 300ms still cuts a longer one (exit 6)", async () => {
      const dir = workspace()
      const long = await plinth(dir, ["plugins", "invoke", "showcase", "slow", "--input", '{"millis": 400}', "--timeout", "597h"])
      expect(long.code, long.stderr).toBe(0)
      expect(long.stdout).toContain('"waitedMillis": 400')
      const short = await plinth(dir, ["plugins", "invoke", "showcase", "slow", "--input", '{"millis": 5000}', "--timeout", "300ms"])
      expect(short.code, short.stderr).toBe(6)
      expect(short.stderr).toContain("did not finish within 300 ms")
      rmSync(dir, { recursive: true, force: true })
    })
  })
})
