import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import { BatchSpanProcessor, type SpanProcessor } from "@opentelemetry/sdk-trace-base"
import type { Layer } from "effect"

/*
 * The OpenTelemetry SDK, loaded only when a host asks for tracing
 * (Telemetry.ts imports this module on demand): a program that does not
 * trace never loads it.
 */

/** A tracer exporting spans through `processor`, the service named `serviceName` unless OTEL_SERVICE_NAME names it. */
export const tracing = (processor: SpanProcessor, serviceName: string | undefined): Layer.Layer<never> =>
  NodeSdk.layer(() => ({
    spanProcessor: processor,
    ...(serviceName !== undefined ? { resource: { serviceName } } : {}),
  })) as Layer.Layer<never>

/** The standard OTLP/HTTP exporter, configured by the OTEL_EXPORTER_OTLP_* variables, batching its spans. */
export const otlpTracing = (serviceName: string | undefined): Layer.Layer<never> =>
  tracing(new BatchSpanProcessor(new OTLPTraceExporter()), serviceName)
