import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { buildCli, examplesWorkspace, plinth } from "./support/cli.js"

/*
 * `invoke` inputs larger than a command line allows (Linux caps one argument
 * at 128 KiB): through stdin (`--input -`) and a file (`--input-file`).
 */

beforeAll(() => {
  buildCli()
})

const workspace = () => examplesWorkspace("plinth-input-")

// 256 KiB of text in 32,768 words: twice what one argument may hold.
const words = 32 * 1024
const text = "abcdefg ".repeat(words)
const input = JSON.stringify({ text })

const outcome = (stdout: string) => JSON.parse(stdout) as { ok: boolean; result: { words: number; characters: number } }

describe.concurrent("large invoke inputs", () => {
  it("--input - reads the whole input from stdin", async () => {
    expect(Buffer.byteLength(input)).toBeGreaterThan(200 * 1024)
    const run = await plinth(workspace(), ["plugins", "invoke", "word-count", "count", "--input", "-", "--json"], {}, input)
    expect(run.code, run.stderr).toBe(0)
    expect(outcome(run.stdout)).toMatchObject({ ok: true, result: { words, characters: text.length } })
  })

  it("--input-file reads the whole input from a file", async () => {
    const dir = workspace()
    writeFileSync(join(dir, "input.json"), input)
    const run = await plinth(dir, ["plugins", "invoke", "word-count", "count", "--input-file", "input.json", "--json"])
    expect(run.code, run.stderr).toBe(0)
    expect(outcome(run.stdout)).toMatchObject({ ok: true, result: { words, characters: text.length } })
  })

  it("input from stdin or a file that is not JSON exits 5 naming where it came from, before anything starts", async () => {
    const dir = workspace()
    writeFileSync(join(dir, "bad.json"), '{"text": ')
    // The lock does not exist: had verification started, this would be a rejection (exit 4).
    const noLock = ["--lock", "no-such.lock"]
    const fromStdin = await plinth(dir, ["plugins", "invoke", "word-count", "count", "--input", "-", ...noLock], {}, "{nope")
    expect(fromStdin.code).toBe(5)
    expect(fromStdin.stderr).toContain("--input (stdin) is not valid JSON")
    const fromFile = await plinth(dir, ["plugins", "invoke", "word-count", "count", "--input-file", "bad.json", ...noLock])
    expect(fromFile.code).toBe(5)
    expect(fromFile.stderr).toContain("--input-file bad.json is not valid JSON")
    const missing = await plinth(dir, ["plugins", "invoke", "word-count", "count", "--input-file", "nope.json", "--json", ...noLock])
    expect(missing.code).toBe(5)
    expect(JSON.parse(missing.stdout).error).toMatchObject({ _tag: "InvalidJsonOption", option: "--input-file", detail: "nope.json cannot be read: no such file" })
  })

  it("no input, or two, is a usage error (exit 2)", async () => {
    const dir = workspace()
    const none = await plinth(dir, ["plugins", "invoke", "word-count", "count"])
    expect(none.code).toBe(2)
    expect(none.stderr).toContain("needs the action's input: --input JSON, --input - (stdin) or --input-file PATH")
    const both = await plinth(dir, ["plugins", "invoke", "word-count", "count", "--input", "{}", "--input-file", "x.json", "--json"])
    expect(both.code).toBe(2)
    expect(JSON.parse(both.stdout).error).toMatchObject({ _tag: "UsageError", message: expect.stringContaining("not both") })
  })
})
