import { execFile, execFileSync } from "node:child_process"
import { cpSync, mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
/** The `plinth` command as npm links it: the launcher, which runs the CLI bundle when it is current. */
export const bin = join(repo, "packages/cli/bin/plinth.js")

export interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * Brings the built binary up to date (a no-op when it is); end-to-end tests run what users run.
 * After a recompile the launcher runs the unbundled CLI until `npm run build` bundles it again.
 */
export const buildCli = () =>
  execFileSync(process.execPath, [join(repo, "node_modules/typescript/bin/tsc"), "-b", "packages/cli"], { cwd: repo, stdio: "pipe" })

/**
 * Runs the built binary with stdout/stderr piped (so neither is a terminal),
 * with none of the caller's NO_COLOR or PLINTH_* settings; stdin carries
 * `stdin`, or is closed at once.
 */
export const plinth = (cwd: string, args: ReadonlyArray<string>, env: Record<string, string> = {}, stdin?: string): Promise<Run> => {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => name !== "NO_COLOR" && !name.startsWith("PLINTH_")),
  )
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [bin, ...args], { cwd, env: { ...inherited, ...env }, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : null, stdout, stderr }),
    )
    // A command that never reads stdin closes it early; what it did not read does not matter.
    child.stdin?.on("error", () => {})
    child.stdin?.end(stdin)
  })
}

/** A fresh folder holding a copy of the example plugins (`plugins/`) and the lock that pins them (`PLUGINS.lock`). */
export const examplesWorkspace = (prefix = "plinth-examples-"): string => {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  cpSync(join(repo, "examples/plugins"), join(dir, "plugins"), { recursive: true })
  cpSync(join(repo, "PLUGINS.lock"), join(dir, "PLUGINS.lock"))
  return dir
}
