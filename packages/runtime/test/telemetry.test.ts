import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { dirname } from "node:path"
import { Effect } from "effect"
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base"
import { TelemetryWith, tracingRequested } from "../src/observability/Telemetry.js"
import { PluginManager } from "../src/manager/PluginManager.js"
import { removeDir } from "./workerFixtures.js"
import { managerLayer, managerWorkspace, probeSource, recordingSpawner, type ManagerWorkspace } from "./managerFixtures.js"

let ws: ManagerWorkspace
beforeAll(async () => {
  ws = await Effect.runPromise(managerWorkspace([{ id: "probe", source: probeSource() }]))
}, 60_000)
afterAll(() => removeDir(dirname(ws.root)))

const parentOf = (span: ReadableSpan, spans: ReadonlyArray<ReadableSpan>) =>
  spans.find((candidate) => candidate.spanContext().spanId === span.parentSpanContext?.spanId)

describe("tracing", () => {
  it("is asked for by OTEL_EXPORTER_OTLP_ENDPOINT (or the traces endpoint) only", () => {
    expect(tracingRequested({})).toBe(false)
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: "" })).toBe(false)
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318" })).toBe(true)
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://127.0.0.1:4318/v1/traces" })).toBe(true)
  })

  it.scopedLive("one managed call: plinth.call with its attributes under the caller's span, plinth.instance.start under plinth.load, one plinth.verify for the plugin set", () => {
    const exporter = new InMemorySpanExporter()
    const { layer } = recordingSpawner()
    return Effect.gen(function* () {
      const manager = yield* PluginManager
      yield* manager.load("probe")
      yield* manager.execute("probe", "config", {}).pipe(Effect.withSpan("host.request"))
      // Read now: closing the tracer's layer shuts the exporter down, which empties it.
      const spans = [...exporter.getFinishedSpans()]
      const named = (name: string) => spans.filter((span) => span.name === name)

      expect(named("plinth.verify")).toHaveLength(1)
      const [load] = named("plinth.load")
      expect(load?.attributes).toMatchObject({ "plinth.plugin": "probe", "plinth.instance": "probe" })
      const [start] = named("plinth.instance.start")
      expect(start?.attributes).toMatchObject({ "plinth.plugin": "probe", "plinth.instance": "probe" })
      // The worker start is part of the load: a child of it, or of a span under it.
      let ancestor = start === undefined ? undefined : parentOf(start, spans)
      while (ancestor !== undefined && ancestor !== load) ancestor = parentOf(ancestor, spans)
      expect(ancestor).toBe(load)

      const [call] = named("plinth.call")
      expect(call?.attributes).toEqual({ "plinth.plugin": "probe", "plinth.instance": "probe", "plinth.action": "config", "plinth.attempt": 1 })
      expect(parentOf(call!, spans)?.name).toBe("host.request")
      expect(call!.spanContext().traceId).toBe(named("host.request")[0]!.spanContext().traceId)
      // The worker round trip is inside the call.
      expect(named("plinth.invoke").map((span) => parentOf(span, spans))).toEqual([call])
    }).pipe(Effect.provide(managerLayer(ws, layer)), Effect.provide(TelemetryWith(new SimpleSpanProcessor(exporter))))
  })
})
