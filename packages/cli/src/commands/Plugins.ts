import { config } from "./Config.js"
import { describe } from "./Describe.js"
import { disable, enable } from "./Enable.js"
import { group } from "./Group.js"
import { invoke } from "./Invoke.js"
import { list } from "./List.js"
import { lock } from "./Lock.js"
import { reportCommand } from "./Report.js"
import { show } from "./Show.js"
import { stats } from "./Stats.js"
import { trace } from "./Trace.js"
import { verify } from "./Verify.js"

/**
 * `plinth plugins …`: observation (verify, list, show, trace, stats), change (lock; enable, disable, config: the persisted
 * state under --data-dir) and operation (invoke, describe: these run plugin code).
 */
export const plugins = group({
  parents: ["plinth"],
  name: "plugins",
  description: "Verify, pin, inspect, configure and run plugins.",
  subcommands: [verify, lock, list, show, invoke, describe, trace, reportCommand, enable, disable, config, stats],
})
