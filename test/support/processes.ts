import { readFileSync } from "node:fs"

/**
 * Whether a process with this pid is still running. Signal 0 checks that the
 * pid exists; a process that has died but not yet been reaped by whoever
 * inherited it (a zombie, which runs no code) still exists, so on Linux its
 * state is read from /proc and a zombie counts as gone.
 */
export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    // "pid (comm) S ...": the state follows the last ')', as comm may hold spaces or parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
  } catch {
    // No /proc (not Linux), or the process was reaped meanwhile.
    return process.platform !== "linux"
  }
}
