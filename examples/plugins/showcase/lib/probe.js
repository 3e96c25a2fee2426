import { readFileSync } from "node:fs"
import { spawnSync } from "node:child_process"
import { Effect } from "effect"

// Each attempt throws inside Effect.sync; the runtime turns a sandbox refusal into a typed SandboxDenied.
export const probeSandbox = (attempt, target) =>
  Effect.sync(() => {
    switch (attempt) {
      case "read-outside":
        return { outcome: `read ${readFileSync(target, "utf8").length} characters` }
      case "spawn":
        return { outcome: `exit status ${spawnSync(target).status}` }
      case "env":
        return { outcome: `value: ${process.env[target]}` }
      case "read-own-folder":
        return { outcome: `read ${readFileSync(target, "utf8").length} characters` }
      case "kill-host":
        process.kill(Number(target), "SIGKILL")
        return { outcome: `sent SIGKILL to ${target}` }
    }
  })
