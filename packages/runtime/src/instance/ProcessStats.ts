import { readdirSync, readFileSync } from "node:fs"
import { Effect, Option } from "effect"

/*
 * What a worker process uses now, read from Linux's /proc: resident memory
 * (VmRSS in /proc/<pid>/status) and CPU time (utime + stime in
 * /proc/<pid>/stat). Parsing is pure and tested on its own; reading is a few
 * small synchronous reads of files the kernel generates. Elsewhere (no /proc)
 * there is no sample.
 */

export interface ProcessSample {
  /** The process measured: the Node worker itself, not a launcher in front of it. */
  readonly pid: number
  readonly rssBytes: number
  /** User + system CPU time since the process started. */
  readonly cpuMillis: number
}

/**
 * Clock ticks per second of /proc/<pid>/stat times. Linux fixes USER_HZ at 100
 * on every architecture Node runs on (it is ABI: `getconf CLK_TCK` prints 100),
 * so it is assumed rather than asked of a subprocess.
 */
export const CLOCK_TICKS_PER_SECOND = 100

/** VmRSS of a /proc/<pid>/status text, in bytes; undefined when absent (a zombie, a kernel thread). */
export const parseRssBytes = (status: string): number | undefined => {
  const match = /^VmRSS:\s+(\d+)\s+kB\s*$/m.exec(status)
  return match === null ? undefined : Number(match[1]) * 1024
}

/**
 * utime + stime of a /proc/<pid>/stat text, in ms. The command name (field 2)
 * is in parentheses and may itself hold spaces and parentheses: fields are
 * counted from the last ')'.
 */
export const parseCpuMillis = (stat: string, ticksPerSecond = CLOCK_TICKS_PER_SECOND): number | undefined => {
  const close = stat.lastIndexOf(")")
  if (close < 0) return undefined
  // After ") ": field 3 (state) is index 0, so utime (field 14) is index 11 and stime (15) index 12.
  const fields = stat.slice(close + 2).trim().split(/\s+/)
  const utime = Number(fields[11])
  const stime = Number(fields[12])
  if (!Number.isFinite(utime) || !Number.isFinite(stime) || fields[11] === undefined || fields[12] === undefined) return undefined
  return ((utime + stime) * 1000) / ticksPerSecond
}

/** The pids in a /proc/<pid>/task/<tid>/children text. */
export const parseChildren = (text: string): ReadonlyArray<number> =>
  text
    .split(/\s+/)
    .filter((s) => s.length > 0)
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0)

const read = (path: string): string | undefined => {
  try {
    return readFileSync(path, "utf8")
  } catch {
    return undefined
  }
}

const childrenOf = (pid: number): ReadonlyArray<number> => {
  let tasks: Array<string>
  try {
    tasks = readdirSync(`/proc/${pid}/task`)
  } catch {
    return []
  }
  return tasks.flatMap((tid) => parseChildren(read(`/proc/${pid}/task/${tid}/children`) ?? ""))
}

/**
 * The worker's own process: the spawned pid, or, when that is bubblewrap
 * (which forks, and forks again as the sandbox's init), the first process
 * below it that is not bwrap.
 */
export const workerProcessOf = (pid: number): number | undefined => {
  let current = pid
  for (let depth = 0; depth < 4; depth++) {
    const comm = read(`/proc/${current}/comm`)?.trim()
    if (comm === undefined) return undefined
    if (comm !== "bwrap") return current
    const [child] = childrenOf(current)
    if (child === undefined) return undefined
    current = child
  }
  return undefined
}

/** One sample of the process (or the worker below its launcher), if it is running and /proc can be read. */
export const sampleProcess = (spawnedPid: number): Option.Option<ProcessSample> => {
  const pid = workerProcessOf(spawnedPid)
  if (pid === undefined) return Option.none()
  const rssBytes = parseRssBytes(read(`/proc/${pid}/status`) ?? "")
  const cpuMillis = parseCpuMillis(read(`/proc/${pid}/stat`) ?? "")
  return rssBytes === undefined || cpuMillis === undefined ? Option.none() : Option.some({ pid, rssBytes, cpuMillis })
}

export const sampleProcessEffect = (spawnedPid: number | undefined): Effect.Effect<Option.Option<ProcessSample>> =>
  spawnedPid === undefined ? Effect.succeed(Option.none()) : Effect.sync(() => sampleProcess(spawnedPid))
