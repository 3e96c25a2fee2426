// A library host on a machine without bubblewrap (PLINTH_BWRAP=""): starts
// two instances with the default tier and prints the Node warnings it received.
import { Effect } from "effect"
import { IsolationTestLive } from "./isolation-live.mjs"
import { startInstance } from "@plinth/runtime"

const { plugin, locked } = JSON.parse(process.argv[2])
const warnings = []
process.on("warning", (warning) => warnings.push({ code: warning.code, message: warning.message }))
const tiers = await Effect.runPromise(
  Effect.scoped(
    Effect.gen(function* () {
      const first = yield* startInstance({ plugin, locked, drift: "ignore" })
      const second = yield* startInstance({ plugin, locked, drift: "ignore" })
      return [first.isolation, second.isolation]
    }),
  ).pipe(Effect.provide(IsolationTestLive)),
)
// Warnings are emitted on the next tick.
await new Promise((resolve) => setTimeout(resolve, 50))
console.log(JSON.stringify({ tiers, warnings }))
