import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { createPlinth } from "@plinth/runtime"
import { buildCli, plinth, repo, type Run } from "./support/cli.js"

/*
 * `plinth plugins report --out DIR`, run as users run it: the real binary over
 * real folders. The examples plus one plugin whose module body writes
 * `witness.txt` if it ever runs.
 */

const json = (run: Run) => JSON.parse(run.stdout) as Record<string, any>
const readJson = (path: string) => JSON.parse(readFileSync(path, "utf8")) as Record<string, any>
const examples = join(repo, "examples/plugins")
const exampleIds = readdirSync(examples).sort()

const witnessPlugin = {
  "plugin.json": JSON.stringify({ id: "witness", version: "1.0.0", description: "Writes a witness when imported.", entry: "index.js" }, null, 2),
  "index.js": ['import { writeFileSync } from "node:fs"', 'writeFileSync(new URL("../../witness.txt", import.meta.url), "ran")', "export default {}", ""].join("\n"),
}

let template = ""

beforeAll(async () => {
  buildCli()
  template = mkdtempSync(join(tmpdir(), "plinth-report-"))
  cpSync(examples, join(template, "plugins"), { recursive: true })
  for (const [name, text] of Object.entries(witnessPlugin)) {
    mkdirSync(join(template, "plugins/witness"), { recursive: true })
    writeFileSync(join(template, "plugins/witness", name), text)
  }
  const locked = await plinth(template, ["plugins", "lock"])
  expect(locked.code, locked.stderr).toBe(0)
})

/** A copy of the locked workspace. */
const workspace = () => {
  const dir = mkdtempSync(join(tmpdir(), "plinth-report-"))
  cpSync(template, dir, { recursive: true })
  return dir
}
const witnessRan = (dir: string) => existsSync(join(dir, "witness.txt"))
const withoutTime = (report: Record<string, any>) => ({ ...report, generatedAt: "" })

describe.concurrent("plinth plugins report", () => {
  it("over the examples: exits 0 and writes report.json, REPORT.md, the lock and every manifest, byte for byte", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "plinth-report-out-")), "review")
    const run = await plinth(repo, ["plugins", "report", "--out", out, "--root", "examples/plugins"])
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toContain(`${exampleIds.length} plugins, ${exampleIds.length} verified, 0 rejected`)
    expect(readdirSync(out).sort()).toEqual(["PLUGINS.lock", "REPORT.md", "manifests", "report.json"])
    expect(readFileSync(join(out, "PLUGINS.lock"), "utf8")).toBe(readFileSync(join(repo, "PLUGINS.lock"), "utf8"))
    expect(readdirSync(join(out, "manifests")).sort()).toEqual(exampleIds.map((id) => `${id}.json`))
    for (const id of exampleIds) {
      expect(readFileSync(join(out, "manifests", `${id}.json`), "utf8")).toBe(readFileSync(join(examples, id, "plugin.json"), "utf8"))
    }

    const report = readJson(join(out, "report.json"))
    const lock = readJson(join(repo, "PLUGINS.lock"))
    expect(report).toMatchObject({ ok: true, reportVersion: 1, root: "examples/plugins", summary: { plugins: exampleIds.length, verified: exampleIds.length, rejected: 0 } })
    expect(report.lock).toMatchObject({ path: "PLUGINS.lock", readable: true, plugins: exampleIds.length, copy: "PLUGINS.lock" })
    expect(report.lock.sha256).toMatch(/^[0-9a-f]{64}$/)
    expect(report.environment).toMatchObject({ node: process.version, os: { platform: process.platform, arch: process.arch } })
    expect(["os", "permissions"]).toContain(report.environment.isolation.default)
    expect(report.plugins.map((p: any) => p.id)).toEqual(exampleIds)
    for (const plugin of report.plugins) {
      const locked = lock.plugins[plugin.id]
      expect(plugin).toMatchObject({ verified: true, rejection: null, manifestCopy: `manifests/${plugin.id}.json` })
      expect(plugin.digest).toEqual({ expected: locked.digest, actual: locked.digest })
      expect(plugin.files).toEqual({ locked: Object.keys(locked.files).length, found: Object.keys(locked.files).length })
      // The declared actions with their schemas, as the manifest has them.
      expect(plugin.manifest.actions).toEqual(readJson(join(examples, plugin.id, "plugin.json")).actions)
    }

    const markdown = readFileSync(join(out, "REPORT.md"), "utf8")
    expect(markdown).toContain(`all ${exampleIds.length} plugins verified`)
    expect(markdown).toContain("`count` (stream)")
    for (const id of exampleIds) expect(markdown).toContain(lock.plugins[id].digest)
  })

  it("--json prints report.json's object; two runs differ only in their timestamp", async () => {
    const dir = workspace()
    const first = await plinth(dir, ["plugins", "report", "--out", "first", "--json"])
    const second = await plinth(dir, ["plugins", "report", "--out", "second", "--json"])
    expect(first.code, first.stderr).toBe(0)
    expect(json(first)).toEqual(readJson(join(dir, "first/report.json")))
    // stdout follows the CLI's one-line JSON (ADR 0019); the file is indented for people who open it.
    expect(first.stdout.trim().split("\n")).toHaveLength(1)
    expect(withoutTime(json(second))).toEqual(withoutTime(json(first)))
    const markdown = (name: string) => readFileSync(join(dir, name, "REPORT.md"), "utf8").replace(/Generated \S+/, "")
    expect(markdown("second")).toBe(markdown("first"))
    expect(witnessRan(dir)).toBe(false)
  })

  it("without a lock: exits 4, and the report says the lock is missing and how to create it", async () => {
    const dir = workspace()
    rmSync(join(dir, "PLUGINS.lock"))
    const run = await plinth(dir, ["plugins", "report", "--out", "review"])
    expect(run.code, run.stderr).toBe(4)
    expect(run.stdout).toContain("lock unusable: no lock file at PLUGINS.lock; create one with: plinth plugins lock")
    const report = readJson(join(dir, "review/report.json"))
    expect(report).toMatchObject({ ok: false, lock: { readable: false, sha256: null } })
    expect(readFileSync(join(dir, "review/REPORT.md"), "utf8")).toContain("create one with: plinth plugins lock")

    const empty = mkdtempSync(join(tmpdir(), "plinth-report-"))
    mkdirSync(join(empty, "plugins"))
    const nothing = await plinth(empty, ["plugins", "report", "--out", "review", "--json"])
    expect(nothing.code, nothing.stderr).toBe(4)
    expect(json(nothing)).toMatchObject({ ok: false, error: { _tag: "PluginsRejected", plugins: [] }, summary: { plugins: 0 } })
  })

  it("over a tampered plugin: exits 4, writes the report all the same and names the changed file", async () => {
    const dir = workspace()
    const file = join(dir, "plugins/text-tools/lib/words.mjs")
    writeFileSync(file, `${readFileSync(file, "utf8")}\n// changed after review\n`)
    writeFileSync(join(dir, "plugins/greeter/extra.js"), "export {}\n")
    const run = await plinth(dir, ["plugins", "report", "--out", "review"])
    expect(run.code, run.stderr).toBe(4)
    expect(run.stdout).toContain("2 rejected")
    expect(run.stdout).toContain("text-tools [IntegrityMismatch]")
    expect(run.stdout).toContain("changed: lib/words.mjs")

    const report = readJson(join(dir, "review/report.json"))
    expect(report.ok).toBe(false)
    expect(report.error).toMatchObject({ _tag: "PluginsRejected", plugins: ["greeter", "text-tools"] })
    const byId = Object.fromEntries(report.plugins.map((p: any) => [p.id, p]))
    expect(byId["text-tools"].verified).toBe(false)
    expect(byId["text-tools"].rejection).toMatchObject({ _tag: "IntegrityMismatch", plugin: "text-tools", added: [], removed: [], changed: ["lib/words.mjs"] })
    expect(byId["text-tools"].digest.actual).not.toBe(byId["text-tools"].digest.expected)
    expect(byId["greeter"].rejection).toMatchObject({ _tag: "IntegrityMismatch", added: ["extra.js"] })
    expect(byId["greeter"].files).toEqual({ locked: 2, found: 3 })
    expect(byId["showcase"]).toMatchObject({ verified: true, rejection: null })
    expect(existsSync(join(dir, "review/manifests/text-tools.json"))).toBe(true)

    const markdown = readFileSync(join(dir, "review/REPORT.md"), "utf8")
    expect(markdown).toContain(`2 of ${readdirSync(join(dir, "plugins")).length} plugins rejected`)
    expect(markdown).toMatch(/text-tools\*\*: IntegrityMismatch/)
    expect(markdown).toContain("changed: `lib/words.mjs`")
    expect(markdown).toContain("added: `extra.js`")

    const machine = await plinth(dir, ["plugins", "report", "--out", "machine", "--json"])
    expect(machine.code).toBe(4)
    expect(json(machine)).toMatchObject({ ok: false, error: { _tag: "PluginsRejected" }, summary: { rejected: 2 } })
    expect(witnessRan(dir)).toBe(false)
  })

  it("runs no plugin code, with a lock or without one", async () => {
    const dir = workspace()
    const locked = await plinth(dir, ["plugins", "report", "--out", "review"])
    expect(locked.code, locked.stderr).toBe(0)
    rmSync(join(dir, "PLUGINS.lock"))
    const unlocked = await plinth(dir, ["plugins", "report", "--out", "unlocked"])
    expect(unlocked.code).toBe(4)
    const report = readJson(join(dir, "unlocked/report.json"))
    expect(report.lock).toMatchObject({ readable: false, copy: null })
    expect(report.plugins.every((p: any) => p.rejection._tag === "LockFileMissing" && p.digest.actual !== null)).toBe(true)
    expect(existsSync(join(dir, "unlocked/PLUGINS.lock"))).toBe(false)
    expect(witnessRan(dir)).toBe(false)

    // The witness is live: loading it in-process (alone: the examples import packages a temporary folder cannot resolve) runs its module body.
    const live = mkdtempSync(join(tmpdir(), "plinth-report-"))
    cpSync(join(template, "plugins/witness"), join(live, "plugins/witness"), { recursive: true })
    expect((await plinth(live, ["plugins", "lock"])).code).toBe(0)
    const host = createPlinth()
    try {
      const loaded = await host.loadPlugins({ root: join(live, "plugins"), lock: join(live, "PLUGINS.lock") })
      expect(loaded.ok ? "loaded" : loaded.rejection._tag).toBe("loaded")
    } finally {
      await host.dispose()
    }
    expect(witnessRan(live)).toBe(true)
  })

  it("refuses an --out that is not empty, not a folder or inside the root (exit 2), unwritable (exit 1); --force replaces only a previous report", async () => {
    const dir = workspace()
    mkdirSync(join(dir, "notes"))
    writeFileSync(join(dir, "notes/mine.txt"), "keep me")
    const refused = await plinth(dir, ["plugins", "report", "--out", "notes"])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toContain("not empty")
    const forced = await plinth(dir, ["plugins", "report", "--out", "notes", "--force"])
    expect(forced.code).toBe(2)
    expect(readdirSync(join(dir, "notes"))).toEqual(["mine.txt"])
    writeFileSync(join(dir, "afile"), "x")
    expect((await plinth(dir, ["plugins", "report", "--out", "afile"])).code).toBe(2)
    const unwritable = await plinth(dir, ["plugins", "report", "--out", "afile/review", "--json"])
    expect(unwritable.code).toBe(1)
    expect(json(unwritable)).toMatchObject({ ok: false, error: { _tag: "ReportWriteFailed" } })
    // Inside the plugin root the next verify would take it for a plugin.
    const inRoot = await plinth(dir, ["plugins", "report", "--out", "plugins/review"])
    expect(inRoot.code).toBe(2)
    expect(inRoot.stderr).toContain("inside the plugin root")
    expect(existsSync(join(dir, "plugins/review"))).toBe(false)

    expect((await plinth(dir, ["plugins", "report", "--out", "review"])).code).toBe(0)
    const before = readJson(join(dir, "review/report.json"))
    rmSync(join(dir, "plugins/word-count"), { recursive: true })
    expect((await plinth(dir, ["plugins", "report", "--out", "review"])).code).toBe(2)
    const replaced = await plinth(dir, ["plugins", "report", "--out", "review", "--force"])
    expect(replaced.code).toBe(4)
    const after = readJson(join(dir, "review/report.json"))
    expect(after.generatedAt >= before.generatedAt).toBe(true)
    expect(after.plugins.find((p: any) => p.id === "word-count").rejection._tag).toBe("MissingPluginDirectory")
    // The stale manifest copy went with the old report.
    expect(readdirSync(join(dir, "review/manifests"))).not.toContain("word-count.json")
    expect(readdirSync(dir).filter((name) => name.includes(".report-"))).toEqual([])
  })
})
