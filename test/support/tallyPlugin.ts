import { join } from "node:path"
import { examplesWorkspace, plinth } from "./cli.js"
import { writePlugin } from "./plugins.js"

/*
 * A plugin that counts its runs: each `tick` answers with its worker's random
 * name and how many ticks that worker has run, so a test can tell whether a
 * job ran once, or again.
 */
export const tallyPlugin = `
import { Effect, Schema } from "effect"
import { definePlugin } from "@plinth/domain"
const worker = Math.random().toString(36).slice(2, 10)
let runs = 0
export default definePlugin({
  config: Schema.Struct({}),
  actions: ({ action }) => ({
    tick: action({
      description: "Waits the given milliseconds, then answers with this worker's name and how many ticks it has run.",
      input: Schema.Struct({ key: Schema.String, millis: Schema.Int }),
      output: Schema.Struct({ key: Schema.String, worker: Schema.String, run: Schema.Int }),
      handler: ({ key, millis }) => Effect.map(Effect.sleep(millis), () => ({ key, worker, run: ++runs })),
    }),
  }),
})
`

/** The examples plus the tally plugin, described and locked: `{ dir, root, lock }`. */
export const tallyWorkspace = async (prefix = "plinth-cluster-") => {
  const dir = examplesWorkspace(prefix)
  writePlugin(join(dir, "plugins"), { id: "tally", files: { "index.js": tallyPlugin } })
  for (const args of [["plugins", "describe", "tally", "--write"], ["plugins", "lock"]]) {
    const run = await plinth(dir, args)
    if (run.code !== 0) throw new Error(`plinth ${args.join(" ")} failed: ${run.stderr}`)
  }
  return { dir, root: join(dir, "plugins"), lock: join(dir, "PLUGINS.lock") }
}
