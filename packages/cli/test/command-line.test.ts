import { cpSync, mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { NodeContext } from "@effect/platform-node"
import { Cause, Console, Effect, Exit, Layer, Option } from "effect"
import fc from "fast-check"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  ansiPalette,
  ExitCode,
  exitCodeForFailure,
  interpret,
  locate,
  plainConsole,
  plainPalette,
  plinth,
  runCommand,
  runToExitCode,
  UserOutput,
  userOutputFrom,
} from "@plinth/cli"

const examples = resolve(dirname(fileURLToPath(import.meta.url)), "../../../examples/plugins")

/** Runs `plinth` in this process, capturing what it prints; `colour` says whether both streams are terminals. */
const harness = (colour: boolean) => {
  const printed = { out: [] as Array<string>, err: [] as Array<string> }
  const base = {
    ...globalThis.console,
    log: (...args: Array<unknown>) => void printed.out.push(args.join(" ")),
    error: (...args: Array<unknown>) => void printed.err.push(args.join(" ")),
  }
  const console = plainConsole(base, { stdout: colour, stderr: colour })
  const layer = Layer.mergeAll(
    Console.setConsole(console),
    Layer.succeed(UserOutput, userOutputFrom(console, colour ? ansiPalette : plainPalette)),
    NodeContext.layer,
  )
  return { printed, layer }
}

const run = async (args: ReadonlyArray<string>, colour = false) => {
  const { printed, layer } = harness(colour)
  const code = await Effect.runPromise(runToExitCode(["node", "plinth", ...args], { interactive: false }).pipe(Effect.provide(layer)))
  return { code, out: printed.out.join("\n"), err: printed.err.join("\n") }
}

describe("locating a command line in the tree", () => {
  it("names the command group and what is wrong there", () => {
    expect(locate(plinth.tree, [])).toEqual({ path: ["plinth"], problem: "'plinth' needs a command: plugins, secrets, serve, jobs" })
    expect(locate(plinth.tree, ["plugins", "frob"]).problem).toBe("'plinth plugins' has no command 'frob'; use one of: verify, lock, list, show, invoke, describe, trace, report, enable, disable, config, stats")
    expect(locate(plinth.tree, ["plugins", "--frob"]).problem).toBe("'plinth plugins' has no option '--frob'")
    expect(locate(plinth.tree, ["PLUGINS", "show", "x"])).toEqual({ path: ["plinth", "plugins", "show"], problem: undefined })
    expect(locate(plinth.tree, ["PLUGINS", "show", "x", "--frob"])).toEqual({
      path: ["plinth", "plugins", "show"],
      problem: "'plinth plugins show' has no option '--frob'",
    })
  })

  it("answers help, the version and completions before parsing, wherever they stand, as the parser would", () => {
    expect(interpret(plinth.tree, ["plugins", "verify", "--root", "x", "--help"])).toEqual({ _tag: "Help", path: ["plinth", "plugins", "verify"] })
    expect(interpret(plinth.tree, ["plugins", "-h"])).toEqual({ _tag: "Help", path: ["plinth", "plugins"] })
    expect(interpret(plinth.tree, ["plugins", "invoke", "a", "b", "--input", "--help"])).toEqual({ _tag: "Help", path: ["plinth", "plugins", "invoke"] })
    expect(interpret(plinth.tree, ["plugins", "invoke", "a", "b", "--input", "--wizard"])).toMatchObject({ _tag: "Refused" })
    expect(interpret(plinth.tree, ["plugins", "list", "--", "--help"])).toEqual({ _tag: "Parse", path: ["plinth", "plugins", "list"] })
    expect(interpret(plinth.tree, ["plugins", "list", "--version"])).toEqual({ _tag: "Version" })
    expect(interpret(plinth.tree, ["--completions", "sh"])).toEqual({ _tag: "Completions", shell: "bash" })
    expect(interpret(plinth.tree, ["--completions=fish"])).toEqual({ _tag: "Completions", shell: "fish" })
    expect(interpret(plinth.tree, ["--completions", "tcsh"])).toMatchObject({ _tag: "Refused", problem: "--completions takes one of bash, zsh, fish, not 'tcsh'" })
  })

  it("refuses an unknown option of a command, which the parser would take for an argument, but not an option's value", () => {
    expect(interpret(plinth.tree, ["plugins", "show", "--frob"])).toEqual({
      _tag: "Refused",
      path: ["plinth", "plugins", "show"],
      problem: "'plinth plugins show' has no option '--frob'",
    })
    expect(interpret(plinth.tree, ["plugins", "invoke", "a", "b", "--input", "-", "--timeout", "-5s"])._tag).toBe("Parse")
    expect(interpret(plinth.tree, ["plugins", "verify", "--root=-x"])._tag).toBe("Parse")
  })

  it("refuses the parser's built-ins that plinth does not offer, as it refuses any unknown option", () => {
    for (const option of ["--wizard", "--log-level", "--log-level=debug"]) {
      expect(interpret(plinth.tree, ["plugins", "verify", option])).toEqual({
        _tag: "Refused",
        path: ["plinth", "plugins", "verify"],
        problem: `'plinth plugins verify' has no option '${option.split("=")[0]}'`,
      })
    }
  })

  it("the tree lists exactly the subcommands the parser knows", async () => {
    for (const sub of plinth.tree.subcommands.flatMap((group) => group.subcommands.map((leaf) => [group.name, leaf.name]))) {
      expect((await run([...sub, "--help"])).code).toBe(ExitCode.Ok)
    }
    expect(plinth.tree.subcommands.map((s) => s.name)).toEqual(["plugins", "secrets", "serve", "jobs"])
  })
})

describe("parsing edge cases", () => {
  it("`--` ends options: a flag after it is an unexpected argument", async () => {
    const result = await run(["plugins", "list", "--", "--json"])
    expect(result.code).toBe(ExitCode.Usage)
    expect(result.err).toContain("run 'plinth plugins list --help'")
  })

  it("a repeated or unknown flag is refused before anything runs", async () => {
    const repeated = await run(["plugins", "verify", "--json", "--json"])
    expect(repeated.code).toBe(ExitCode.Usage)
    expect(JSON.parse(repeated.out)).toMatchObject({ ok: false, error: { _tag: "UsageError", command: "plinth plugins verify" } })
    const missingRoot = await run(["plugins", "verify", "--json", "--root", join(tmpdir(), "no-such-root")])
    expect(missingRoot.code).toBe(ExitCode.Usage)
    expect(JSON.parse(missingRoot.out).error._tag).toBe("UsageError")
    const unknown = await run(["plugins", "lock", "--lock", join(tmpdir(), "never-written.lock"), "--frob"])
    expect(unknown.code).toBe(ExitCode.Usage)
    expect(unknown.out).toBe("")
  })

  it("--wizard is not an option, even at a terminal: a usage error instead of a prompt", async () => {
    const { printed, layer } = harness(false)
    const code = await Effect.runPromise(runToExitCode(["node", "plinth", "plugins", "verify", "--wizard"], { interactive: true }).pipe(Effect.provide(layer)))
    expect(code).toBe(ExitCode.Usage)
    expect(printed.err.join("\n")).toContain("has no option '--wizard'")
  })

  it("help is coloured for a terminal and plain otherwise", async () => {
    expect((await run(["plugins", "show", "--help"], true)).out).toContain("\u001b[")
    const plain = await run(["plugins", "show", "--help"], false)
    expect(plain.out).toContain("<id>")
    expect(plain.out).not.toContain("\u001b")
  })
})

describe("arbitrary command lines", () => {
  let previousCwd = ""
  beforeAll(() => {
    // Commands resolve paths against the current directory; keep whatever they write in a temp folder.
    previousCwd = process.cwd()
    const dir = mkdtempSync(join(tmpdir(), "plinth-fuzz-"))
    cpSync(examples, join(dir, "plugins"), { recursive: true })
    process.chdir(dir)
  })
  afterAll(() => process.chdir(previousCwd))

  const vocabulary = fc.constantFrom(
    "plugins", "verify", "lock", "list", "show", "greeter", "--root", "--lock", "--json", "--check",
    "plugins", "PLUGINS.lock", "-h", "--help", "--version", "--wizard", "--completions", "bash", "--log-level", "debug",
    "--", "-", "--root=plugins", "--json=true", "--json=no", "",
    "invoke", "trace", "greet", "--input", "--config", "{}", "--timeout", "5s", "--limit", "3",
  )
  const token = fc.oneof(vocabulary, fc.string({ maxLength: 12 }).filter((s) => !s.startsWith("/") && !s.includes("..")))
  const argv = fc.oneof(
    fc.array(token, { maxLength: 7 }),
    fc.array(token, { maxLength: 5 }).map((rest) => ["plugins", ...rest]),
  )

  // There is no lock in this folder, so no command line can get as far as starting a worker.
  it("never die: every outcome is success or a typed failure with a documented exit code", async () => {
    await fc.assert(
      fc.asyncProperty(argv, async (args) => {
        const { layer } = harness(false)
        const exit = await Effect.runPromise(
          runCommand(["node", "plinth", ...args], { interactive: false }).pipe(Effect.exit, Effect.provide(layer)),
        )
        if (Exit.isFailure(exit)) expect(Cause.isDie(exit.cause), Cause.pretty(exit.cause)).toBe(false)
        const code = Exit.match(exit, {
          onSuccess: () => ExitCode.Ok,
          onFailure: (cause) => Option.match(Cause.failureOption(cause), { onNone: () => ExitCode.Failure, onSome: exitCodeForFailure }),
        })
        expect([0, 1, 2, 3, 4, 5]).toContain(code)
      }),
      { numRuns: 150 },
    )
  })
})
