import { group } from "./Group.js"
import { list } from "./List.js"
import { lock } from "./Lock.js"
import { show } from "./Show.js"
import { verify } from "./Verify.js"

/** `plinth plugins …`: observation (verify, list, show) and change (lock). */
export const plugins = group({
  parents: ["plinth"],
  name: "plugins",
  description: "Verify, pin and inspect plugins.",
  subcommands: [verify, lock, list, show],
})
