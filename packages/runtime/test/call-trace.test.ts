import { appendFileSync, mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { CallTrace, CallTraceLive, TRACE_KEEP, type CallRecord } from "@plinth/runtime"

const call = (n: number, overrides: Partial<CallRecord> = {}): CallRecord => ({
  at: new Date(1_700_000_000_000 + n).toISOString(),
  plugin: "demo",
  instance: "demo-1",
  action: `act${n}`,
  durationMs: n,
  outcome: "ok",
  ...overrides,
})

const traceAt = (file: string) => CallTraceLive(file).pipe(Layer.provide(NodeContext.layer))

describe("CallTrace", () => {
  it.effect("records calls and reads back the most recent, oldest first, across instances of the service", () => {
    const file = join(mkdtempSync(join(tmpdir(), "plinth-trace-")), "nested", "trace.jsonl")
    return Effect.gen(function* () {
      yield* Effect.flatMap(CallTrace, (t) => Effect.forEach([1, 2, 3], (n) => t.record(call(n)))).pipe(Effect.provide(traceAt(file)))
      yield* Effect.flatMap(CallTrace, (t) => t.record(call(4, { outcome: "failed", category: "transient", message: "flaky" }))).pipe(
        Effect.provide(traceAt(file)),
      )
      const { calls, skipped } = yield* Effect.flatMap(CallTrace, (t) => t.recent(3)).pipe(Effect.provide(traceAt(file)))
      expect(calls.map((c) => c.action)).toEqual(["act2", "act3", "act4"])
      expect(calls[2]).toEqual(call(4, { outcome: "failed", category: "transient", message: "flaky" }))
      expect(skipped).toBe(0)
    })
  })

  it.effect("an empty history is not an error, and corrupt lines are skipped and counted", () => {
    const file = join(mkdtempSync(join(tmpdir(), "plinth-trace-")), "trace.jsonl")
    return Effect.gen(function* () {
      const trace = yield* CallTrace
      expect(yield* trace.recent(10)).toEqual({ calls: [], skipped: 0 })
      yield* trace.record(call(1))
      appendFileSync(file, '{"not":"a call"}\n[[[[\n')
      yield* trace.record(call(2))
      const { calls, skipped } = yield* trace.recent(10)
      expect(calls.map((c) => c.action)).toEqual(["act1", "act2"])
      expect(skipped).toBe(2)
    }).pipe(Effect.provide(traceAt(file)))
  })

  it.effect("keeps the file bounded", () => {
    const file = join(mkdtempSync(join(tmpdir(), "plinth-trace-")), "trace.jsonl")
    return Effect.gen(function* () {
      const trace = yield* CallTrace
      appendFileSync(file, Array.from({ length: 2 * TRACE_KEEP }, (_, n) => JSON.stringify(call(n))).join("\n") + "\n")
      yield* trace.record(call(99_999))
      const lines = readFileSync(file, "utf8").trim().split("\n")
      expect(lines.length).toBe(TRACE_KEEP)
      expect(JSON.parse(lines.at(-1)!).action).toBe("act99999")
    }).pipe(Effect.provide(traceAt(file)))
  })
})
