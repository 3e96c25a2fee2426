import { Effect } from "effect"
import { IsolationWarnings } from "@plinth/runtime"
import { UserOutput } from "./Colour.js"

/** The runtime's one-time isolation fallback warning, as one line on stderr (never stdout: `--json` stays clean). */
export const isolationWarningsToStderr = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(UserOutput, (output) =>
    Effect.provideService(effect, IsolationWarnings, { warn: (message) => output.err(output.palette.dim(`warning: ${message}`)) }),
  )
