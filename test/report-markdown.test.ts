import { describe, expect, it } from "vitest"
import { makeVerificationReport, markdownCode, markdownText, renderReportMarkdown, type PluginEvidence } from "@plinth/domain"

/* REPORT.md is rendered by a pure function; what plugins and the disk supply is untrusted text. */

const environment = {
  plinth: "0.1.0",
  node: "v20.20.0",
  os: { platform: "linux", release: "6.1", arch: "x64" },
  isolation: { default: "permissions" as const, os: { available: false, reason: "bwrap is not installed" }, permissions: { available: true as const, parentDeathSignal: true } },
}
const lock = { path: "PLUGINS.lock", readable: true, problem: null, sha256: "ab".repeat(32), plugins: 2, copy: "PLUGINS.lock" }

const plugin = (id: string, extra: Partial<PluginEvidence> = {}): PluginEvidence => ({
  id,
  verified: true,
  version: "1.0.0",
  description: "fine",
  digest: { expected: "h1:x", actual: "h1:x" },
  files: { locked: 2, found: 2 },
  manifest: { id, actions: { run: { description: "runs", input: {}, output: {} }, tail: { description: "t", input: {}, output: {}, streaming: true } } },
  manifestCopy: `manifests/${id}.json`,
  rejection: null,
  ...extra,
})

const hostile = "evil | cell\n# Heading <script>alert(1)</script> [link](http://x) `tick`"

describe("REPORT.md", () => {
  it("gives the verdict, one table row per plugin sorted by id, and the declared actions", () => {
    const markdown = renderReportMarkdown(makeVerificationReport({ generatedAt: "2026-12-01T00:00:00.000Z", root: "plugins", lock, environment, plugins: [plugin("zeta"), plugin("alpha")] }))
    expect(markdown).toContain("**Verdict: all 2 plugins verified.**")
    const rows = markdown.split("\n").filter((line) => line.startsWith("| ") && !line.startsWith("| plugin") && !line.startsWith("| ---"))
    expect(rows.map((row) => row.split(" | ")[0])).toEqual(["| alpha", "| zeta"])
    expect(markdown).toContain("`run`, `tail` (stream)")
    expect(markdown).toContain("os unavailable (bwrap is not installed)")
  })

  it("escapes what plugins supply: no new lines, table cells, HTML or links", () => {
    const rejected = plugin(hostile, {
      verified: false,
      rejection: { _tag: "SchemaViolation", plugin: hostile, detail: hostile, message: hostile },
      manifest: null,
      manifestCopy: null,
    })
    const report = makeVerificationReport({ generatedAt: "t", root: "plugins", lock, environment, plugins: [rejected] })
    expect(report.ok).toBe(false)
    const markdown = renderReportMarkdown(report)
    const lines = markdown.split("\n")
    expect(lines.filter((line) => line.startsWith("#"))).toEqual(["# Plinth verification report", "## Plugins", "## Rejections"])
    const row = lines.find((line) => line.includes("SchemaViolation") && line.startsWith("| "))!
    expect(row.split(/(?<!\\)\|/)).toHaveLength(7)
    expect(markdown).not.toMatch(/(?<!\\)<script/)
    expect(markdown).not.toMatch(/(?<!\\)\[link/)
    expect(markdownText("a\u0007b")).toBe("a\\u0007b")
    expect(markdownCode("a`b")).toBe("a\\`b")
  })
})
