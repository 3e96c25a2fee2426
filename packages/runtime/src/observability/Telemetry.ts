import { Effect, Layer } from "effect"
import type { SpanProcessor } from "@opentelemetry/sdk-trace-base"

/*
 * Tracing (ADR 0031). Plinth's operations are Effect spans: `plinth.verify`
 * (the plugin set), `plinth.load` (a manager load), `plinth.instance.start`
 * (a worker start), `plinth.call` (a call through the manager or `invoke`),
 * `plinth.job` (the queue's), with the attributes `plinth.plugin`,
 * `plinth.instance`, `plinth.action`, `plinth.attempt`, `plinth.job.id`.
 * They go anywhere only when a tracer is installed: `TelemetryLive` installs
 * one, exporting over OTLP/HTTP, when OTEL_EXPORTER_OTLP_ENDPOINT (or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, and is empty otherwise. The SDK
 * is imported on demand, so a host or CLI run without the variable never
 * loads it, and the hot paths skip their spans when no tracer is installed.
 */

export type TelemetryEnv = Readonly<Record<string, string | undefined>>

/** Whether the environment asks for traces to be exported. */
export const tracingRequested = (env: TelemetryEnv): boolean =>
  (env["OTEL_EXPORTER_OTLP_ENDPOINT"] ?? "") !== "" || (env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] ?? "") !== ""

/** "plinth", unless OTEL_SERVICE_NAME says otherwise (then the SDK reads it itself). */
const serviceNameOf = (env: TelemetryEnv) => ((env["OTEL_SERVICE_NAME"] ?? "") !== "" ? undefined : "plinth")

const sdk = Effect.promise(() => import("./TelemetrySdk.js"))

/**
 * A tracer exporting over OTLP/HTTP when the environment (default
 * `process.env`) sets OTEL_EXPORTER_OTLP_ENDPOINT; nothing otherwise.
 * Closing it flushes the spans not yet exported (up to 3 s).
 */
export const telemetryFromEnv = (env: TelemetryEnv = process.env): Layer.Layer<never> =>
  Layer.unwrapEffect(
    Effect.suspend(() =>
      tracingRequested(env) ? Effect.map(sdk, (module) => module.otlpTracing(serviceNameOf(env))) : Effect.succeed(Layer.empty),
    ),
  )

export const TelemetryLive: Layer.Layer<never> = telemetryFromEnv()

/** A tracer sending spans to `processor` (an in-memory exporter's, in tests), whatever the environment. */
export const TelemetryWith = (processor: SpanProcessor, serviceName = "plinth"): Layer.Layer<never> =>
  Layer.unwrapEffect(Effect.map(sdk, (module) => module.tracing(processor, serviceName)))
