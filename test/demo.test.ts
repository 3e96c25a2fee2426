import { execFile } from "node:child_process"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { repo } from "./support/cli.js"

/*
 * The README's first Quick start command is `npm start`: the demo host must
 * run on a fresh clone, show each part of the promise, and leave no worker behind.
 */
describe("npm start (examples/demo.mjs)", () => {
  it("verifies and loads the examples, runs them in workers, refuses an escape and a tampered copy, and exits 0", async () => {
    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
      execFile(process.execPath, [join(repo, "examples/demo.mjs")], { cwd: repo, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : null, stdout, stderr }),
      ),
    )
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toMatch(/loaded 5 of 5 plugin folders/)
    expect(run.stdout).toContain('case-tools.convert({"text":"plugins you can trust","to":"pascal"}) -> "PluginsYouCanTrust"')
    expect(run.stdout).toMatch(/showcase\.probe\(\{"attempt":"kill-host".*SandboxDenied/)
    expect(run.stdout).toMatch(/the scope closed: all \d+ worker processes have exited/)
    expect(run.stdout).toMatch(/rejected \(IntegrityMismatch, exit code 4\); nothing was imported/)
  }, 120_000)
})
