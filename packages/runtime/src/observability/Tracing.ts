import { Effect, type Fiber } from "effect"

/*
 * Whether a fiber runs with a tracer installed (TelemetryLive, TelemetryWith
 * or a host's own). Without one, the per-call spans (`plinth.invoke`,
 * `plinth.call`, `plinth.job`) are skipped: a span costs microseconds per
 * call even when nothing records it.
 */

/** The tracer in place when none is installed. */
const defaultTracer = Effect.runSync(Effect.tracer)

export const tracerInstalled = <A, E>(fiber: Fiber.RuntimeFiber<A, E>): boolean => fiber.currentTracer !== defaultTracer
