import { spawnSync } from "node:child_process"
import { accessSync, constants, lstatSync, readFileSync, readlinkSync, realpathSync } from "node:fs"
import { delimiter, join } from "node:path"
import { Context, Effect, Schema } from "effect"
import type { Permissions } from "@plinth/domain"

/*
 * The isolation tier of a worker: the boundary around the process, with
 * Node's permission model (Sandbox.ts) inside it in both tiers.
 *
 *   "os"           bubblewrap (Linux): new user, pid, network, IPC, UTS and
 *                  cgroup namespaces, a read-only view of only what the worker
 *                  needs (Node, its libraries, the worker runtime), no plugin
 *                  folder, the data folder only when granted, no network
 *                  unless granted, and the sandbox dies with its host.
 *   "permissions"  the permission model alone; on Linux the worker is started
 *                  through `setpriv --pdeathsig KILL` so that it still dies
 *                  with its host, whatever plugin code does to its event loop.
 *
 * Both launchers are a program put before Node on the command line
 * (SpawnRequest.launcher); the channel to the worker (fd 3, wire/Framing.ts) is an inherited fd
 * and passes through them unchanged. Both rest on the kernel's parent-death
 * signal, which fires when the host's spawning *thread* exits (Node spawns
 * from the main thread): a host that starts workers from a worker thread
 * loses them when that thread ends. See ADRs/0015-isolation-tiers.md.
 */

export type IsolationTier = "os" | "permissions"

export const isolationTiers: ReadonlyArray<IsolationTier> = ["os", "permissions"]

/** Where the one-time fallback warning goes. Default: a Node process warning (code PLINTH_ISOLATION_FALLBACK). */
export class IsolationWarnings extends Context.Reference<IsolationWarnings>()("@plinth/runtime/IsolationWarnings", {
  defaultValue: () => ({
    warn: (message: string): Effect.Effect<void> =>
      Effect.sync(() => process.emitWarning(message, { code: "PLINTH_ISOLATION_FALLBACK" })),
  }),
}) {}

/** What the permission tier gives up compared with the OS tier; named in the fallback warning. */
export const permissionTierGaps =
  "plugins can reach the network and listeners on this host, see other processes, and read through links placed in their data folder"

type Probe = { readonly ok: true; readonly program: string } | { readonly ok: false; readonly reason: string }

const findProgram = (name: string): string | undefined => {
  const folders = [...(process.env["PATH"] ?? "").split(delimiter).filter((f) => f !== ""), "/usr/bin", "/bin", "/usr/local/bin"]
  for (const folder of folders) {
    const candidate = join(folder, name)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return undefined
}

/** Top-level folders that hold libraries or programs; merged-/usr systems make them links into /usr. */
const SYSTEM_FOLDERS = ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]
/** What the dynamic linker and Node's start-up read from /etc. */
const SYSTEM_FILES = ["/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime"]
/** What name resolution and TLS read, bound only when the network is granted. */
const NETWORK_FILES = [
  "/etc/resolv.conf",
  "/etc/hosts",
  "/etc/host.conf",
  "/etc/nsswitch.conf",
  "/etc/gai.conf",
  "/etc/services",
  "/etc/protocols",
  "/etc/ssl",
  "/etc/ca-certificates",
  "/etc/pki",
]

/**
 * The shared libraries this very Node has mapped (the worker runs the same
 * binary), from /proc/self/maps: robust to Node installed anywhere, no `ldd`.
 */
const mappedLibraries = (): ReadonlyArray<string> => {
  try {
    const paths = readFileSync("/proc/self/maps", "utf8")
      .split("\n")
      .map((line) => line.split(/\s+/).slice(5).join(" "))
      .filter((path) => path.startsWith("/") && /\.so(\.|$)/.test(path))
    return [...new Set(paths)]
  } catch {
    return []
  }
}

let systemView: ReadonlyArray<string> | undefined

/** Read-only mounts of Node and what it needs to start; computed once. */
const systemMounts = (): ReadonlyArray<string> => {
  if (systemView !== undefined) return systemView
  const args = ["--ro-bind", "/usr", "/usr"]
  const covered = ["/usr/"]
  for (const folder of SYSTEM_FOLDERS) {
    try {
      const stat = lstatSync(folder)
      if (stat.isSymbolicLink()) args.push("--symlink", readlinkSync(folder), folder)
      else if (stat.isDirectory()) {
        args.push("--ro-bind", folder, folder)
        covered.push(`${folder}/`)
      }
    } catch {
      // absent on this system
    }
  }
  for (const file of SYSTEM_FILES) args.push("--ro-bind-try", file, file)
  const node = realpathSync(process.execPath)
  const isCovered = (path: string) => covered.some((prefix) => path.startsWith(prefix))
  for (const file of new Set([node, ...mappedLibraries()])) if (!isCovered(file)) args.push("--ro-bind", file, file)
  if (process.execPath !== node && !isCovered(process.execPath)) args.push("--ro-bind", node, process.execPath)
  systemView = args
  return args
}

/** The bubblewrap arguments for one worker, ending in `--`: Node's command line follows. */
export const bubblewrapArgs = (options: {
  readonly network: boolean
  readonly readPaths: ReadonlyArray<string>
  readonly dataDir: string | undefined
}): ReadonlyArray<string> => [
  "--unshare-all",
  ...(options.network ? ["--share-net"] : []),
  "--die-with-parent",
  "--new-session",
  "--cap-drop",
  "ALL",
  // The fresh /proc, /dev and /tmp first: binds below may live under /tmp.
  "--proc",
  "/proc",
  "--dev",
  "/dev",
  "--tmpfs",
  "/tmp",
  ...systemMounts(),
  ...(options.network ? NETWORK_FILES.flatMap((file) => ["--ro-bind-try", file, file]) : []),
  ...options.readPaths.flatMap((path) => ["--ro-bind", path, path]),
  ...(options.dataDir !== undefined ? ["--bind", options.dataDir, options.dataDir] : []),
  "--chdir",
  "/",
  "--",
]

let bubblewrap: Probe | undefined

/**
 * Whether bubblewrap is installed and can actually build a sandbox here (user
 * namespaces may be disabled, a container may forbid them): one real sandboxed
 * `node -e 0`, once per process.
 */
export const bubblewrapStatus = (): Probe => {
  if (bubblewrap !== undefined) return bubblewrap
  if (process.platform !== "linux") return (bubblewrap = { ok: false, reason: "bubblewrap needs Linux" })
  // PLINTH_BWRAP names the program outright (a bwrap outside PATH; or none at all, to test the fallback).
  const named = process.env["PLINTH_BWRAP"]
  const program = named !== undefined ? (named === "" ? undefined : named) : findProgram("bwrap")
  if (program === undefined) return (bubblewrap = { ok: false, reason: "bwrap is not installed (package 'bubblewrap')" })
  const args = bubblewrapArgs({ network: false, readPaths: [], dataDir: undefined })
  const probe = spawnSync(program, [...args, process.execPath, "-e", "0"], { env: {}, stdio: ["ignore", "ignore", "pipe"], timeout: 10_000 })
  if (probe.status === 0) return (bubblewrap = { ok: true, program })
  const detail = (probe.error?.message ?? probe.stderr?.toString("utf8") ?? "").trim().split("\n")[0] || `exit status ${probe.status}`
  return (bubblewrap = { ok: false, reason: `bwrap cannot create a sandbox here (${detail})` })
}

let setpriv: string | null | undefined

/** `setpriv` with `--pdeathsig` (util-linux), if present; looked up once. */
export const setprivProgram = (): string | undefined => {
  if (setpriv !== undefined) return setpriv ?? undefined
  setpriv = null
  if (process.platform !== "linux") return undefined
  const program = findProgram("setpriv")
  if (program === undefined) return undefined
  const help = spawnSync(program, ["--help"], { env: {}, stdio: ["ignore", "pipe", "ignore"], timeout: 5000 })
  if (help.stdout?.toString("utf8").includes("--pdeathsig")) setpriv = program
  return setpriv ?? undefined
}

export interface IsolationPlan {
  readonly tier: IsolationTier
  /** The argv prefix before Node (SpawnRequest.launcher). */
  readonly launcher: ReadonlyArray<string>
  /** A neutral working directory: never the plugin folder. */
  readonly cwd: string
}

/** Why the OS tier was asked for and cannot be had; a start reports it as WorkerStartFailed. */
export class IsolationUnavailable extends Schema.TaggedError<IsolationUnavailable>()("IsolationUnavailable", {
  reason: Schema.String,
}) {}

let warned = false

/**
 * The tier and launcher for a worker. Without a request: the strongest tier
 * available, with a one-time warning when that is the permission tier. "os"
 * fails when bubblewrap is missing or unusable; it never silently degrades.
 */
export const planIsolation = (options: {
  readonly requested: IsolationTier | undefined
  readonly permissions: Permissions | undefined
  readonly readPaths: ReadonlyArray<string>
  readonly dataDir: string | undefined
}): Effect.Effect<IsolationPlan, IsolationUnavailable> =>
  Effect.gen(function* () {
    const status = options.requested === "permissions" ? undefined : bubblewrapStatus()
    if (status !== undefined && status.ok) {
      const args = bubblewrapArgs({ network: options.permissions?.network === true, readPaths: options.readPaths, dataDir: options.dataDir })
      return { tier: "os", launcher: [status.program, ...args], cwd: "/" } satisfies IsolationPlan
    }
    if (options.requested === "os") return yield* new IsolationUnavailable({ reason: `the OS isolation tier is unavailable: ${status?.ok === false ? status.reason : "unknown"}` })
    if (options.requested === undefined && status?.ok === false && !warned) {
      warned = true
      const warnings = yield* IsolationWarnings
      yield* warnings.warn(`workers run under Node's permission model only (${status.reason}): ${permissionTierGaps}`)
    }
    const deathSignal = setprivProgram()
    return {
      tier: "permissions",
      // The kernel kills the worker when the host's spawning thread ends; plugin code cannot undo it.
      launcher: deathSignal !== undefined ? [deathSignal, "--pdeathsig", "KILL", "--"] : [],
      cwd: "/",
    } satisfies IsolationPlan
  })
