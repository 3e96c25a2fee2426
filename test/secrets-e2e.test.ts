import { randomBytes } from "node:crypto"
import { readdirSync, readFileSync, statSync } from "node:fs"
import { join, relative } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { buildCli, plinth, type Run } from "./support/cli.js"
import { tempDir, writeFile, writePlugin } from "./support/plugins.js"
import { vaultSource } from "./support/secrets.js"

/*
 * Secrets end to end, as an operator meets them: set from stdin, delivered to
 * the plugin that declares them, refused starts when one is missing, and a
 * unique marker in the value that must appear nowhere Plinth writes: the
 * trace, the data folder beside the secret store, the workspace, stdout and
 * stderr of every run, its errors. Plugin code may hand out its own secret in
 * its results (ADR 0026); these plugins do not, so any marker found is a leak
 * by Plinth (or by Redacted not holding).
 */

beforeAll(() => {
  buildCli()
})

const json = (run: Run) => JSON.parse(run.stdout.trim().split("\n").at(-1)!) as Record<string, any>


const otherSource = `
import { Effect, Schema } from "effect"
import { definePlugin } from "@plinth/domain"
export default definePlugin({
  config: Schema.Struct({}),
  actions: ({ action }) => ({
    ping: action({ description: "pong", input: Schema.Struct({}), output: Schema.String, handler: () => Effect.succeed("pong") }),
  }),
})
`

/** Every file under `dir` but those under `skip`, as text. */
const filesUnder = (dir: string, skip: string): Array<{ path: string; text: string }> => {
  const found: Array<{ path: string; text: string }> = []
  const walk = (folder: string) => {
    for (const entry of readdirSync(folder)) {
      const path = join(folder, entry)
      if (path === skip) continue
      if (statSync(path).isDirectory()) walk(path)
      else found.push({ path: relative(dir, path), text: readFileSync(path, "latin1") })
    }
  }
  walk(dir)
  return found
}

describe("secrets", () => {
  it("reach only the plugin that declares them, as Redacted values, and appear nowhere Plinth writes", { timeout: 120_000 }, async () => {
    const marker = `mk${randomBytes(8).toString("hex")}`
    const token = `${marker}-token-value`
    const dir = tempDir("plinth-secrets-")
    const root = join(dir, "plugins")
    writePlugin(root, {
      id: "vault",
      manifest: {
        secrets: [
          { name: "API_TOKEN", required: true, description: "The upstream API token." },
          { name: "OPTIONAL_KEY", required: false },
        ],
      },
      files: { "index.js": vaultSource },
    })
    writePlugin(root, { id: "other", manifest: { secrets: [{ name: "OTHER_TOKEN", description: "Another plugin's." }] }, files: { "index.js": otherSource } })
    const runs: Array<Run> = []
    const cli = async (args: ReadonlyArray<string>, stdin?: string) => {
      const run = await plinth(dir, args, {}, stdin)
      runs.push(run)
      return run
    }
    for (const id of ["vault", "other"]) expect((await cli(["plugins", "describe", id, "--write"])).code).toBe(0)
    // describe --write regenerates actions and config and leaves the author's secrets as written.
    const written0 = JSON.parse(readFileSync(join(root, "vault", "plugin.json"), "utf8"))
    expect(Object.keys(written0.actions).sort()).toEqual(["crash", "digest", "fail", "log", "logExit", "peek"])
    expect(written0.secrets).toEqual([
      { name: "API_TOKEN", required: true, description: "The upstream API token." },
      { name: "OPTIONAL_KEY", required: false },
    ])
    expect((await cli(["plugins", "lock"])).code).toBe(0)

    // Missing: refused before anything starts, naming the secret, exit 5.
    const missing = await cli(["plugins", "invoke", "vault", "digest", "--input", "{}", "--json"])
    expect(missing.code).toBe(5)
    expect(json(missing).error).toMatchObject({ _tag: "MissingSecret", plugin: "vault", names: ["API_TOKEN"] })
    const missingText = await cli(["plugins", "invoke", "vault", "digest", "--input", "{}"])
    expect(missingText.stderr).toContain("plinth secrets set vault API_TOKEN")

    expect((await cli(["secrets", "set", "vault", "API_TOKEN"], `${token}\n`)).code).toBe(0)
    expect((await cli(["secrets", "set", "vault", "UNDECLARED", "--json"], `${marker}-undeclared`)).code).toBe(0)
    expect((await cli(["secrets", "set", "other", "OTHER_TOKEN"], `${marker}-other`)).code).toBe(0)

    const listed = await cli(["secrets", "list", "--json"])
    expect(json(listed).plugins).toEqual([
      { plugin: "other", secrets: [{ name: "OTHER_TOKEN", set: true, declared: true, required: true, description: "Another plugin's." }], missing: [], manifest: true },
      {
        plugin: "vault",
        secrets: [
          { name: "API_TOKEN", set: true, declared: true, required: true, description: "The upstream API token." },
          { name: "OPTIONAL_KEY", set: false, declared: true, required: false },
          { name: "UNDECLARED", set: true, declared: false },
        ],
        missing: [],
        manifest: true,
      },
    ])
    expect((await cli(["secrets", "list"])).stdout).toMatch(/vault\n {2}API_TOKEN +set +required/)

    const digest = await cli(["plugins", "invoke", "vault", "digest", "--input", "{}", "--json"])
    expect(digest.code).toBe(0)
    let sum = 0
    for (const c of token) sum = (sum + c.charCodeAt(0)) % 997
    expect(json(digest).result).toEqual({ length: token.length, sum, names: ["API_TOKEN"] })

    const peek = await cli(["plugins", "invoke", "vault", "peek", "--input", "{}", "--json"])
    expect(json(peek).result).toEqual({ undeclared: false, othersSecret: false, inEnv: false })

    const failed = await cli(["plugins", "invoke", "vault", "fail", "--input", "{}", "--json"])
    expect(failed.code).toBe(6)
    expect(json(failed).error.message).toBe("upstream refused <redacted>")
    const failedText = await cli(["plugins", "invoke", "vault", "fail", "--input", "{}"])
    expect(failedText.stderr).toContain("upstream refused <redacted>")

    const crashed = await cli(["plugins", "invoke", "vault", "crash", "--input", "{}", "--json"])
    expect(crashed.code).toBe(8)
    expect(json(crashed).error.message).toContain("crashed with <redacted>")
    await cli(["plugins", "invoke", "vault", "crash", "--input", "{}"])

    const logged = await cli(["plugins", "invoke", "vault", "log", "--input", "{}"])
    expect(logged.code, logged.stderr).toBe(0)
    expect(logged.stdout).toContain("logged <redacted>")
    const exited = await cli(["plugins", "invoke", "vault", "logExit", "--input", "{}", "--json"])
    expect(exited.code).toBe(6)
    expect(json(exited).error).toMatchObject({ _tag: "WorkerExited", exitCode: 3 })
    expect(json(exited).error.stderrTail).toContain("about to exit holding <redacted>")
    await cli(["plugins", "invoke", "vault", "logExit", "--input", "{}"])

    await cli(["plugins", "trace", "--json"])
    await cli(["plugins", "trace"])
    await cli(["plugins", "show", "vault", "--json"])

    // Removing the last declared secret refuses the next start again.
    expect((await cli(["secrets", "rm", "vault", "API_TOKEN"])).code).toBe(0)
    const again = await cli(["plugins", "invoke", "vault", "digest", "--input", "{}", "--json"])
    expect(json(again).error).toMatchObject({ _tag: "MissingSecret", names: ["API_TOKEN"] })
    expect(json(await cli(["secrets", "list", "vault", "--json"])).plugins[0].missing).toEqual(["API_TOKEN"])

    const written = filesUnder(dir, join(dir, ".plinth", "secrets"))
    expect(written.map((f) => f.path)).toContain(join(".plinth", "trace.jsonl"))
    for (const file of written) expect(file.text.includes(marker), `${file.path} holds the secret`).toBe(false)
    runs.forEach((run, index) => {
      expect(run.stdout.includes(marker), `stdout of run ${index}`).toBe(false)
      expect(run.stderr.includes(marker), `stderr of run ${index}`).toBe(false)
    })
    // The store itself does hold them, owner-only.
    const stored = readFileSync(join(dir, ".plinth", "secrets", "other.json"), "utf8")
    expect(stored).toContain(`${marker}-other`)
    expect(statSync(join(dir, ".plinth", "secrets", "other.json")).mode & 0o777).toBe(0o600)
  })

  it("never takes a value from the command line", async () => {
    const dir = tempDir("plinth-secrets-argv-")
    for (const args of [["the-value"], ["--value=the-value"], ["--value", "the-value", "--json"]]) {
      const run = await plinth(dir, ["secrets", "set", "vault", "API_TOKEN", ...args])
      expect(run.code, args.join(" ")).toBe(2)
      expect(run.stdout + run.stderr, args.join(" ")).not.toContain("the-value")
    }
  })
})

describe("plinth secrets --json", () => {
  it("prints one envelope per command: success, a bad name (exit 2), a store that cannot be used (exit 1)", async () => {
    const dir = tempDir("plinth-secrets-json-")
    const set = await plinth(dir, ["secrets", "set", "vault", "API_TOKEN", "--json"], {}, "value\n")
    expect(set.code).toBe(0)
    expect(JSON.parse(set.stdout)).toEqual({ ok: true, plugin: "vault", name: "API_TOKEN", set: true })
    const list = await plinth(dir, ["secrets", "list", "vault", "--json"])
    expect(JSON.parse(list.stdout)).toEqual({
      ok: true,
      plugins: [{ plugin: "vault", secrets: [{ name: "API_TOKEN", set: true }], missing: [], manifest: false }],
    })
    const rm = await plinth(dir, ["secrets", "rm", "vault", "API_TOKEN", "--json"])
    expect(JSON.parse(rm.stdout)).toEqual({ ok: true, plugin: "vault", name: "API_TOKEN", removed: true })
    for (const command of [["set", "vault", "api-token"], ["rm", "Vault", "API_TOKEN"], ["list", "../vault"]]) {
      const run = await plinth(dir, ["secrets", ...command, "--json"], {}, "value")
      expect(run.code, command.join(" ")).toBe(2)
      expect(JSON.parse(run.stdout).error).toMatchObject({ _tag: "UsageError", command: `plinth secrets ${command[0]}` })
    }
    // A data directory that is a file: the store cannot be used.
    writeFile(join(dir, "a-file"), "not a folder")
    const blocked = await plinth(dir, ["secrets", "set", "vault", "API_TOKEN", "--data-dir", "a-file", "--json"], {}, "v")
    expect(blocked.code).toBe(1)
    expect(JSON.parse(blocked.stdout).error).toMatchObject({ _tag: "SecretStoreUnavailable" })
    const fromEnv = await plinth(dir, ["secrets", "list", "--json"], { PLINTH_DATA_DIR: "elsewhere" })
    expect(JSON.parse(fromEnv.stdout)).toEqual({ ok: true, plugins: [] })
  })
})
