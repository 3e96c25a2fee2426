import { describe, expect, it } from "vitest"
import {
  InstanceFailed,
  PluginInputError,
  PluginResourceError,
  PluginTransientError,
  SandboxDenied,
  toJobError,
  WorkerKilled,
  type PluginFailure,
} from "@plinth/domain"
import type { CallRecord, DescribeOutcome } from "@plinth/runtime"
import {
  ansiPalette,
  invocationJson,
  itemJsonLine,
  PluginCallFailed,
  pluginCallFailedJson,
  progressLines,
  renderDescribeOutcome,
  renderItem,
  renderPluginCallFailed,
  renderTrace,
  renderValue,
  traceJson,
} from "@plinth/cli"
import { everyPluginFailure } from "./support-failures.js"

const time = new Date("2025-01-02T03:04:05.000Z")
const failed = (failure: PluginFailure) =>
  new PluginCallFailed({ failure, job: toJobError(failure, { plugin: "showcase", instance: "showcase#1", time }) })

describe("rendering plugin failures for people", () => {
  it("names the error, its category, whether it is worth retrying, and its structured fields", () => {
    const transient = renderPluginCallFailed(failed(new PluginTransientError({ message: "the service is busy", retryAfterSeconds: 5 })))
    expect(transient).toContain("[PluginTransientError]: the service is busy")
    expect(transient).toContain("category: transient, retriable")
    expect(transient).toContain("retry after: 5 s")

    const input = renderPluginCallFailed(failed(new PluginInputError({ message: "bad name", fieldsInvalid: ["name", "age"] })))
    expect(input).toContain("category: input, not retriable")
    expect(input).toContain("invalid fields: name, age")

    const resource = renderPluginCallFailed(
      failed(new PluginResourceError({ message: "too big", shortfall: { resource: "memory_mb", needed: 4096, available: 512 } })),
    )
    expect(resource).toContain("category: resource, retriable")
    expect(resource).toContain("shortfall: memory_mb needed 4096, available 512")

    const killed = renderPluginCallFailed(failed(new WorkerKilled({ plugin: "showcase", exitCode: null, signal: "SIGKILL" })))
    expect(killed).toContain("likely out of memory")
    expect(killed).toContain("exit code null, signal SIGKILL")
  })

  it("says something readable for every variant", () => {
    for (const [failure, category] of everyPluginFailure) {
      const text = renderPluginCallFailed(failed(failure))
      expect(text).toContain(`[${failure._tag}]`)
      expect(text).toContain(`category: ${category}`)
      expect(text).not.toContain('{ "')
    }
    const notFound = everyPluginFailure.find(([f]) => f._tag === "ActionNotFound")![0]
    expect(renderPluginCallFailed(failed(notFound))).toContain("'showcase' has no action 'nope'")
  })

  it("text from a plugin cannot drive the terminal, even in colour", () => {
    const text = renderPluginCallFailed(failed(new PluginInputError({ message: "evil\u001b[2J\u009b", fieldsInvalid: ["\u001b]0;x"] })), ansiPalette)
    expect(text.replace(/\u001b\[\d+m/g, "")).not.toMatch(/[\u001b\u009b]/)
    expect(text).toContain("evil\\u001b[2J\\u009b")
  })

  it("--json carries the encoded error under its tag and its job summary", () => {
    const json = JSON.parse(JSON.stringify(pluginCallFailedJson(failed(new SandboxDenied({ permission: "fs-read", resource: "/etc/passwd" })))))
    expect(json).toEqual({
      ok: false,
      failure: { _tag: "SandboxDenied", permission: "fs-read", resource: "/etc/passwd" },
      job: {
        category: "fatal",
        tag: "SandboxDenied",
        message: "the sandbox denied fs-read access to /etc/passwd",
        retriable: false,
        plugin: "showcase",
        instance: "showcase#1",
        time: "2025-01-02T03:04:05.000Z",
      },
    })
    const transient = pluginCallFailedJson(failed(new PluginTransientError({ message: "busy", retryAfterSeconds: 5 })))
    expect(transient.job).toMatchObject({ category: "transient", retriable: true, retryAfterSeconds: 5 })
    const instance = pluginCallFailedJson(failed(new InstanceFailed({ plugin: "p", instance: "p#1", restarts: 3, lastError: "x" })))
    expect(instance.failure).toMatchObject({ _tag: "InstanceFailed", restarts: 3 })
  })
})

describe("rendering results", () => {
  it("a value is indented JSON, an item one line, both escaped", () => {
    expect(renderValue({ text: "Hello" })).toBe('{\n  "text": "Hello"\n}')
    expect(renderItem({ n: 1, s: "a\u009bb" })).toBe('{"n":1,"s":"a\\u009bb"}')
  })

  it("--json is JSON Lines: one line per item, then the outcome", () => {
    expect(itemJsonLine({ n: 2 })).toBe('{"item":{"n":2}}')
    expect(invocationJson("showcase", "count", { kind: "stream", items: 3 })).toEqual({ ok: true, plugin: "showcase", action: "count", items: 3 })
    expect(invocationJson("showcase", "greet", { kind: "value", value: { text: "Hi" } })).toEqual({
      ok: true,
      plugin: "showcase",
      action: "greet",
      result: { text: "Hi" },
    })
  })

  it("progress prints at most one line per whole percent", () => {
    const lines = progressLines()
    const printed = [0.001, 0.002, 0.5, 0.501, 0.75, 1].map((fraction) => lines({ fraction, message: `at ${fraction}` }))
    expect(printed).toEqual(["progress   0%  at 0.001", undefined, "progress  50%  at 0.5", undefined, "progress  75%  at 0.75", "progress 100%  at 1"])
  })
})

const call = (overrides: Partial<CallRecord>): CallRecord => ({
  at: "2025-01-02T03:04:05.000Z",
  plugin: "showcase",
  instance: "showcase#1",
  action: "greet",
  durationMs: 12,
  outcome: "ok",
  ...overrides,
})

describe("rendering the trace", () => {
  it("says plainly when nothing was recorded", () => {
    expect(renderTrace({ file: ".plinth/trace.jsonl", calls: [], skipped: 0 })).toBe("no calls recorded in .plinth/trace.jsonl")
  })

  it("lists time, plugin, instance, action, duration, outcome and what went wrong, in the order given", () => {
    const text = renderTrace({
      file: "t.jsonl",
      calls: [
        call({}),
        call({ action: "count", items: 3, durationMs: 40 }),
        call({ action: "fail", outcome: "failed", category: "transient", message: "the service is busy" }),
      ],
      skipped: 1,
    })
    const lines = text.split("\n")
    expect(lines[0]).toMatch(/^time\s+plugin\s+instance\s+action\s+duration\s+outcome\s+detail$/)
    expect(lines[1]).toMatch(/^2025-01-02T03:04:05.000Z\s+showcase\s+showcase#1\s+greet\s+12 ms\s+ok$/)
    expect(lines[2]).toMatch(/count\s+40 ms\s+ok\s+3 items$/)
    expect(lines[3]).toMatch(/fail\s+12 ms\s+failed\s+transient: the service is busy$/)
    expect(text).toContain("3 calls from t.jsonl, oldest first")
    expect(text).toContain("1 unreadable line skipped")
  })

  it("--json lists the records as they are", () => {
    const calls = [call({})]
    expect(traceJson({ file: "t.jsonl", calls, skipped: 0 })).toEqual({ ok: true, file: "t.jsonl", calls, skipped: 0 })
  })
})

describe("rendering describe", () => {
  const outcome = (status: Pick<DescribeOutcome, "upToDate" | "written">): DescribeOutcome => ({
    declaration: {
      actions: {
        count: { description: "Counts.", input: { type: "object" }, output: { type: "integer" }, streaming: true },
        greet: { description: "Greets.", input: { type: "object" }, output: { type: "string" } },
      },
      config: { type: "object", properties: { greeting: { type: "string" } } },
    },
    ...status,
  })

  it("prints each action with its schemas, the config schema, and what to do about plugin.json", () => {
    const current = renderDescribeOutcome("showcase", outcome({ upToDate: true, written: false }))
    expect(current).toMatch(/count \(streaming\): Counts\.\n {4}input:\n {6}\{\n {8}"type": "object"/)
    expect(current).toMatch(/greet: Greets\.[\s\S]*output:[\s\S]*"string"/)
    expect(current).toMatch(/config:\n {2}\{[\s\S]*"greeting"/)
    expect(current).toContain("already carries this declaration")

    const stale = renderDescribeOutcome("showcase", outcome({ upToDate: false, written: false }))
    expect(stale).toContain("plinth plugins describe showcase --write")

    const written = renderDescribeOutcome("showcase", outcome({ upToDate: false, written: true }))
    expect(written).toContain("review the change, then run 'plinth plugins lock'")
  })
})
