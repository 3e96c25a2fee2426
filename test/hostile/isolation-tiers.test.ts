import { execFileSync } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { Effect } from "effect"
import { createPlinth } from "@plinth/runtime"
import { buildCli, examplesWorkspace, plinth } from "../support/cli.js"
import { hostilePlugin } from "./support/isolation.js"

/*
 * Choosing the tier, end to end through the CLI: `--isolation os` never
 * degrades silently, and the default falls back with one warning line.
 * PLINTH_BWRAP="" stands for a machine without bubblewrap.
 */

beforeAll(() => {
  buildCli()
})

const workspace = () => examplesWorkspace("plinth-tiers-")

const greet = ["plugins", "invoke", "greeter", "greet", "--input", '{"name":"Ada"}']
const noBwrap = { PLINTH_BWRAP: "" }

describe.concurrent("plinth --isolation", () => {
  it("--isolation os without a usable bwrap refuses to start the worker: exit 8, naming why", async () => {
    const run = await plinth(workspace(), [...greet, "--isolation", "os"], noBwrap)
    expect(run.code).toBe(8)
    expect(run.stderr).toContain("the OS isolation tier is unavailable: bwrap is not installed")
    expect(run.stdout).toBe("")
  })

  it("by default, without bwrap: one warning line on stderr naming what is lost, then the call runs; --json stdout stays clean", async () => {
    const human = await plinth(workspace(), greet, noBwrap)
    expect(human.code).toBe(0)
    const warnings = human.stderr.split("\n").filter((line) => line.startsWith("warning:"))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toContain("permission model only")
    expect(warnings[0]).toContain("network")
    const machine = await plinth(workspace(), [...greet, "--json"], noBwrap)
    expect(machine.code).toBe(0)
    expect(JSON.parse(machine.stdout.trim())).toMatchObject({ ok: true })
    expect(machine.stderr).toContain("warning:")
  })

  it("the permission tier chosen explicitly, or the OS tier available: no warning", async () => {
    const chosen = await plinth(workspace(), [...greet, "--isolation", "permissions"], noBwrap)
    expect(chosen.code).toBe(0)
    expect(chosen.stderr).not.toContain("warning:")
    const os = await plinth(workspace(), [...greet, "--isolation", "os"])
    expect(os.code).toBe(0)
    expect(os.stderr).not.toContain("warning:")
    const strongest = await plinth(workspace(), greet)
    expect(strongest.stderr).not.toContain("warning:")
  })

  it("describe takes the flag too; an unknown tier is a usage error", async () => {
    const described = await plinth(workspace(), ["plugins", "describe", "greeter", "--root", "plugins", "--isolation", "permissions", "--json"])
    expect(described.code).toBe(0)
    expect((await plinth(workspace(), [...greet, "--isolation", "container"])).code).toBe(2)
  })
})

describe("isolation from a library host", () => {
  it("the Promise facade takes the tier and reports it on the instance", async () => {
    const dir = workspace()
    const plinth = createPlinth()
    try {
      for (const isolation of ["os", "permissions"] as const) {
        const started = await plinth.start({ root: join(dir, "plugins"), lock: join(dir, "PLUGINS.lock"), plugin: "greeter", isolation })
        if (!started.ok) throw new Error(`the start failed: ${started.failure._tag}`)
        expect(started.instance.isolation).toBe(isolation)
        expect(await started.instance.invoke("greet", { name: "Ada" })).toMatchObject({ ok: true })
        await started.instance.stop()
      }
    } finally {
      await plinth.dispose()
    }
  })

  it("without bwrap, the default tier warns once per process (a Node warning with its own code), however many workers start", async () => {
    const plugin = await Effect.runPromise(hostilePlugin(mkdtempSync(join(tmpdir(), "plinth-warn-")), "quiet", { actions: "" }))
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("PLINTH_")))
    const out = execFileSync(process.execPath, [join(import.meta.dirname, "support", "isolation-warning-host.mjs"), JSON.stringify(plugin)], {
      env: { ...inherited, PLINTH_BWRAP: "" },
      encoding: "utf8",
    })
    const { tiers, warnings } = JSON.parse(out.trim().split("\n").at(-1)!)
    expect(tiers).toEqual(["permissions", "permissions"])
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatchObject({ code: "PLINTH_ISOLATION_FALLBACK" })
    expect(warnings[0].message).toContain("bwrap is not installed")
    expect(warnings[0].message).toContain("network")
  })
})
