import { appendFileSync, cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildCli, plinth, repo, type Run } from "./support/cli.js"

/*
 * `plinth plugins verify` written plainly (`--root DIR`, `--lock FILE`,
 * `--json`, lower case) is read without the parser, to start faster; any
 * other spelling goes through the parser (ADR 0018). Either way a user gets
 * the same answer: each case below runs both spellings and compares what a
 * user sees (exit code, stdout, stderr).
 */

let dir = ""

beforeAll(() => {
  buildCli()
  dir = mkdtempSync(join(tmpdir(), "plinth-plain-verify-"))
  cpSync(join(repo, "examples/plugins"), join(dir, "plugins"), { recursive: true })
  cpSync(join(repo, "PLUGINS.lock"), join(dir, "PLUGINS.lock"))
  writeFileSync(join(dir, "not-a-folder"), "")
})

afterAll(() => rmSync(dir, { recursive: true, force: true }))

const seen = (run: Run) => ({ code: run.code, stdout: run.stdout, stderr: run.stderr })

/** The plain line, and the same line with the command name in capitals (which only the parser reads). */
const both = async (options: ReadonlyArray<string>, env: Record<string, string> = {}) => {
  const plain = await plinth(dir, ["plugins", "verify", ...options], env)
  const parsed = await plinth(dir, ["plugins", "VERIFY", ...options], env)
  expect(seen(plain)).toEqual(seen(parsed))
  return plain
}

describe("a plain verify line and the parser agree", () => {
  it("every plugin verified: the same report, as text and as JSON, with flags or with --opt=value", async () => {
    expect((await both(["--root", "plugins", "--lock", "PLUGINS.lock"])).code).toBe(0)
    const asJson = await both(["--json", "--lock=PLUGINS.lock", "--root=plugins"])
    expect(asJson.code).toBe(0)
    expect(JSON.parse(asJson.stdout).ok).toBe(true)
  })

  it("root and lock from the defaults and from PLINTH_ROOT / PLINTH_LOCK", async () => {
    expect((await both([])).code).toBe(0)
    cpSync(join(dir, "PLUGINS.lock"), join(dir, "other.lock"))
    expect((await both(["--json"], { PLINTH_ROOT: "plugins", PLINTH_LOCK: "other.lock" })).code).toBe(0)
  })

  it("a root that is not a folder: the same usage error (exit 2), as text and as JSON", async () => {
    expect((await both(["--root", "not-a-folder"])).code).toBe(2)
    expect((await both(["--root", "missing", "--json"])).code).toBe(2)
    expect((await both([], { PLINTH_ROOT: "missing" })).code).toBe(2)
  })

  it("a missing lock and a changed plugin: the same rejection (exit 4), naming the lock given", async () => {
    const missing = await both(["--root", "plugins", "--lock", "none.lock"])
    expect(missing.code).toBe(4)
    expect(missing.stderr).toContain("none.lock")
    appendFileSync(join(dir, "plugins/greeter/index.js"), "\n// changed\n")
    const changed = await both(["--root", "plugins", "--lock", "PLUGINS.lock", "--json"])
    expect(changed.code).toBe(4)
    expect(JSON.parse(changed.stdout).error._tag).toBe("IntegrityMismatch")
  })
})
