// A fast producer, a slow consumer: 1,500 chunks of 1 MiB taken one per
// 10 ms. With credit-based flow control the worker is pulled only as far as
// the host's window, so the host holds a few chunks at a time, not 1.5 GiB.
import { execFileSync } from "node:child_process"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { definitionSource, lockOf, removeRoot, tempRoot, writeHostilePlugin } from "./support/wire.js"

const root = tempRoot("backpressure")
afterAll(() => removeRoot(root))

const source = definitionSource(`
  ping: action({ description: "", input: Schema.Struct({}), output: Schema.String, handler: () => Effect.succeed("pong") }),
  flood: streaming({ description: "", input: Schema.Struct({ count: Schema.Number }), output: Schema.String,
    stream: ({ count }, context) => Stream.range(1, count).pipe(
      Stream.tap((n) => context.progress(n / count, String(n))),
      Stream.map((n) => String(n).padStart(8, "0") + block)) }),
`, `const block = "x".repeat(1024 * 1024 - 8)`)

describe("stream backpressure", () => {
  it("1,500 × 1 MiB streamed to a consumer taking one per 10 ms: the plugin is never more than a window ahead, the host retains nothing, its RSS stays bounded", async () => {
    const plugin = writeHostilePlugin(root, "flood", source)
    const locked = await Effect.runPromise(lockOf(plugin))
    const flood = (mode: "plinth" | "effect") => {
      const output = execFileSync(process.execPath, ["--expose-gc", join(import.meta.dirname, "support", "wire-flood-host.mjs"), plugin.dir, JSON.stringify(locked), "1500", "10", mode], {
        encoding: "utf8",
        timeout: 90_000,
      })
      return JSON.parse(output.trim().split("\n").at(-1)!)
    }
    const floor = flood("effect")
    const result = flood("plinth")
    console.log(`stream flood: ${JSON.stringify(result)}; the same consumer fed from memory in the same host: ${JSON.stringify(floor)}`)
    expect(floor.taken).toBe(1500)
    expect(floor.inOrder).toBe(true)
    expect(result.taken).toBe(1500)
    expect(result.inOrder).toBe(true)
    expect(result.bytesMiB).toBeCloseTo(1500, 0)
    // The plugin is pulled only as far as the window (4 MiB: four 1 MiB chunks) allows: at most one window
    // in flight, one the consumer has taken but not yet processed, and the chunk waiting for credit.
    expect(result.maxAhead).toBeLessThanOrEqual(9)
    // Nothing is retained: after a full GC the host's heap is back where it was.
    expect(result.heapRetainedMiB).toBeLessThan(16)
    // What RSS shows is garbage V8 has not collected yet, not data the host holds. The consumer sets the floor:
    // `Stream.runForEach` leaves every 1 MiB string it takes reachable at the next young collection, which
    // promotes it (300 of 300 in a bare process, against ~33 for a plain `Effect.flatMap` loop), and V8 lets the
    // old generation grow to a few times the live heap before a full collection.
    // The same consumer fed the same chunks from memory, with no worker and no wire, grows this host by
    // ~107 MiB, so 64 MiB is out of reach for it without forcing collections (ADR 0010; `bench/stream-flood.mjs`,
    // medians of 3: the stream 127 MiB, that floor 107, a plain JavaScript consumer from memory 25). Before the
    // runtime stopped evaluating @effect/platform's barrel (~20 MiB more live heap), the stream grew 193 MiB.
    expect(result.growthMiB).toBeLessThan(Math.max(1.5 * floor.growthMiB, 64))
    expect(result.growthMiB).toBeLessThan(176)
  }, 180_000)
})
