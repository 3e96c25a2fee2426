// A worker that writes more than a frame may hold: a header claiming 4 GiB,
// a newline-free flood, garbage. The host reads a header, sees it is over the
// cap, kills the worker and holds nothing of the body.
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { startInstance } from "@plinth/runtime"
import { definitionSource, lockOf, removeRoot, tempRoot, waitGone, WireLive, writeHostilePlugin } from "./support/wire.js"
import { tiers } from "./support/isolation.js"

const root = tempRoot("oversized")
afterAll(() => removeRoot(root))

const MiB = 1024 * 1024

const source = definitionSource(`
  fine: action({ description: "", input: Schema.Struct({}), output: Schema.String, handler: () => Effect.succeed("fine") }),
  claim4GiB: action({ description: "", input: Schema.Struct({}), output: Schema.String, handler: () => Effect.sync(() => {
    channel(Buffer.from([0xff, 0xff, 0xff, 0xff])); channel(Buffer.alloc(1024 * 1024, 0x41)); return "returned" }) }),
  claimOverCap: action({ description: "", input: Schema.Struct({ bytes: Schema.Number }), output: Schema.String, handler: ({ bytes }) => Effect.sync(() => {
    const header = Buffer.alloc(4); header.writeUInt32BE(bytes); channel(header); channel(Buffer.alloc(1024 * 1024, 0x41)); return "returned" }) }),
  flood: action({ description: "", input: Schema.Struct({ mib: Schema.Number }), output: Schema.String, handler: ({ mib }) => Effect.sync(() => {
    // A newline-free stream, written as fast as the channel takes it (a second socket on fd 3 is refused: the runtime holds it).
    const block = Buffer.alloc(1024 * 1024, 0x61)
    for (let sent = 0; sent < mib; sent++) channel(block)
    return "flooded"
  }) }),
  garbageBody: action({ description: "", input: Schema.Struct({}), output: Schema.String, handler: () => Effect.sync(() => {
    channel(Buffer.from([0, 0, 0, 8, 0xff, 0xfe, 0xfd, 0xfc, 0x00, 0x01, 0x02, 0x03])); return "returned" }) }),
  emptyFrame: action({ description: "", input: Schema.Struct({}), output: Schema.String, handler: () => Effect.sync(() => {
    channel(Buffer.from([0, 0, 0, 0])); return "returned" }) }),
`)

const rssMiB = () => process.memoryUsage().rss / MiB

// Both isolation tiers: the caps are the host's, whatever sandbox the worker runs in.
describe.each(tiers)("oversized frames and floods, %s tier", (tier) => {
  it.scopedLive("a header claiming 4 GiB, a header one byte over a configured cap, a 256 MiB newline-free flood, garbage, an empty frame: each a ProtocolError at once, the worker killed, the host's memory untouched", () =>
    Effect.gen(function* () {
      const plugin = writeHostilePlugin(root, "oversized", source)
      const instance = yield* startInstance({
        isolation: tier,
        plugin,
        locked: yield* lockOf(plugin),
        drift: "ignore",
        maxFrameBytes: { fromWorker: 8 * MiB },
        restartPolicy: { maxRestarts: 20, window: "1 minute" },
      })
      const before = rssMiB()
      const attacks: ReadonlyArray<readonly [string, unknown, RegExp]> = [
        ["claim4GiB", {}, /a frame header states 4294967295 bytes, over the cap of 8388608/],
        ["claimOverCap", { bytes: 8 * MiB + 1 }, /a frame header states 8388609 bytes, over the cap of 8388608/],
        // "aaaa" read as a header is 1,633,771,873 bytes.
        ["flood", { mib: 256 }, /a frame header states 1633771873 bytes/],
        ["garbageBody", {}, /a frame is not JSON/],
        ["emptyFrame", {}, /a frame is not JSON/],
      ]
      for (const [action, input, detail] of attacks) {
        const pid = yield* instance.pid
        const failure = yield* Effect.flip(instance.invoke(action, input))
        expect(failure._tag, `${action}: ${failure.message}`).toBe("ProtocolError")
        expect(failure.message, action).toMatch(detail)
        expect(yield* waitGone(pid!), action).toBe(true)
        expect(yield* instance.invoke("fine", {}), action).toBe("fine")
      }
      // The host read headers, never bodies: far below what any of these claimed or sent.
      expect(rssMiB() - before).toBeLessThan(64)
    }).pipe(Effect.provide(WireLive)),
  )

  it.scopedLive("a module body claiming a 4 GiB frame before the handshake fails the start typed", () =>
    Effect.gen(function* () {
      const plugin = writeHostilePlugin(root, "oversized-load", definitionSource("", "channel(Buffer.from([0xff, 0xff, 0xff, 0xff]))"))
      const failure = yield* Effect.flip(startInstance({ isolation: tier, plugin, locked: yield* lockOf(plugin), drift: "ignore" }))
      expect(failure._tag).toBe("WorkerStartFailed")
      expect(failure.message).toMatch(/broke the protocol: a frame header states 4294967295 bytes/)
    }).pipe(Effect.provide(WireLive)),
  )
})
