import { describe } from "./Describe.js"
import { group } from "./Group.js"
import { invoke } from "./Invoke.js"
import { list } from "./List.js"
import { lock } from "./Lock.js"
import { reportCommand } from "./Report.js"
import { show } from "./Show.js"
import { trace } from "./Trace.js"
import { verify } from "./Verify.js"

/** `plinth plugins …`: observation (verify, list, show, trace), change (lock) and operation (invoke, describe: these run plugin code). */
export const plugins = group({
  parents: ["plinth"],
  name: "plugins",
  description: "Verify, pin, inspect and run plugins.",
  subcommands: [verify, lock, list, show, invoke, describe, trace, reportCommand],
})
