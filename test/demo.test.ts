import { execFile } from "node:child_process"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { repo } from "./support/cli.js"

/*
 * The README's first Quick start command is `npm start`: the demo host must
 * run on a fresh clone, show each part of the promise, and leave no worker behind.
 */
describe("npm start (examples/demo.mjs)", () => {
  it("verifies and loads the examples, runs them in workers and under the manager, refuses an escape and a tampered copy, and exits 0", async () => {
    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
      execFile(process.execPath, [join(repo, "examples/demo.mjs")], { cwd: repo, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : null, stdout, stderr }),
      ),
    )
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toMatch(/loaded 6 of 6 plugin folders/)
    expect(run.stdout).toContain('case-tools.convert({"text":"plugins you can trust","to":"pascal"}) -> "PluginsYouCanTrust"')
    expect(run.stdout).toMatch(/showcase\.probe\(\{"attempt":"kill-host".*SandboxDenied/)
    expect(run.stdout).toMatch(/the scope closed: all \d+ worker processes have exited/)
    expect(run.stdout).toMatch(/rejected \(IntegrityMismatch, exit code 4\); nothing was imported/)
    // The PluginManager over one data directory (issue 8 §6): two instances of one plugin with their own configs,
    expect(run.stdout).toContain('greeter: greet({"name":"Ada"}) -> "Welcome, Ada!"')
    expect(run.stdout).toContain('greeter-formal: greet({"name":"Ada"}) -> "Good evening, Ada!"')
    // disable and enable,
    expect(run.stdout).toContain('greeter-formal: greet({"name":"Grace"}) refused: PluginDisabled')
    expect(run.stdout).toContain('greeter: greet({"name":"Grace"}) -> "Welcome, Grace!"')
    expect(run.stdout).toContain('greeter-formal: greet({"name":"Grace"}) -> "Good evening, Grace!"')
    expect(run.stdout).toMatch(/events: loaded greeter, loaded greeter-formal, disabled greeter-formal, enabled greeter-formal, configChanged greeter/)
    expect(run.stdout).toContain("the first manager closed: its 3 workers stopped")
    // a config that survives a restart,
    expect(run.stdout).toContain(`after a restart, greeter's config is still {"greeting":"Ahoy"}: greet -> "Ahoy, Ada!"`)
    // a plugin using a secret that never appears (the demo checks its own output and data directory, and fails otherwise).
    expect(run.stdout).toMatch(/vault-demo: sign\(\{"message":"ship it"\}\) -> \{"label":"vault","message":"ship it","signature":"[0-9a-f]{8}","tokenLength":47\}/)
    // Retry after eviction: out of heap once, an idle instance of another plugin stopped, a fresh worker succeeds.
    expect(run.stdout).toContain('hungry: grow({}) -> "a table of 4 rows"')
    expect(run.stdout).toContain("evicted greeter to make room")
    expect(run.stdout).toContain("attempt 2 of 2 after WorkerOutOfMemory, on a fresh worker")
    expect(run.stdout).toContain("the call trace records hungry.grow, attempt 1: failed")
    expect(run.stdout).toContain("the VAULT_TOKEN secret appears nowhere in this output, nor in the data directory outside its secret store")
    expect(run.stdout).not.toMatch(/demo-token-/)
    // The job queue: priority order behind a running job, progress, a pending job cancelled, and where to watch it live.
    expect(run.stdout).toMatch(/ran in this order: slow\(\{"millis":300\}\) priority 0 -> \{"waitedMillis":300\}, greet\(\{"name":"High"\}\) priority 10 -> "Hello, High!", greet\(\{"name":"Middle"\}\) priority 5 -> "Hello, Middle!", greet\(\{"name":"Low"\}\) priority 0 -> "Hello, Low!"/)
    expect(run.stdout).toContain("the slow job reported progress 10% 20% 30% 40% 50% 60% 70% 80% 90% 100%")
    expect(run.stdout).toContain("cancelled while pending: true; it never ran (status cancelled)")
    expect(run.stdout).toContain("npx plinth serve --root examples/plugins --lock PLUGINS.lock")
  }, 120_000)
})
