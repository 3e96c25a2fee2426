import { execFileSync } from "node:child_process"
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { commandsOf, docs, plinth as tree } from "@plinth/cli"
import { buildCli, plinth } from "./support/cli.js"

/*
 * Help, the version and shell completions, as a user meets them: every
 * command and option described with an example, full usage paths, the exit
 * codes in `plinth --help`, one line of version, and completion scripts that
 * offer each command's own options (bash is run for real, with `complete`).
 */

beforeAll(() => {
  buildCli()
})

const commands = commandsOf(tree.tree)
const leaves = commands.filter((c) => c.node.subcommands.length === 0)
const leavesOf = (group: string) => leaves.filter((c) => c.path[1] === group)
const key = (path: ReadonlyArray<string>) => path.join(" ")

/** The parser's generated help text, which help must not show. */
const boilerplate = [
  "A user-defined piece of text",
  "A true or false value",
  "This setting is optional",
  "can be set from environment variables",
  "One of the following",
  "A directory.",
  "An integer.",
  "--wizard",
  "--log-level",
  "$ verify",
  "USAGE",
]

describe("the written documentation", () => {
  it("describes every command, option and argument the parser knows, with an example, and nothing it does not", () => {
    for (const { path, node } of commands) {
      const doc = docs[key(path)]
      expect(doc, key(path)).toBeDefined()
      expect(doc!.summary.length, key(path)).toBeGreaterThan(10)
      expect(doc!.examples.length, key(path)).toBeGreaterThan(0)
      for (const option of node.options) {
        const optionDoc = doc!.options?.[option.name]
        expect(optionDoc?.description, `${key(path)} ${option.name}`).toMatch(/\w{3}/)
        expect(optionDoc?.example, `${key(path)} ${option.name}`).toContain(option.name)
      }
      expect(Object.keys(doc!.options ?? {}).sort(), key(path)).toEqual(node.options.map((o) => o.name).sort())
      for (const arg of node.args) expect(doc!.args?.[arg]?.description, `${key(path)} <${arg}>`).toMatch(/\w{3}/)
      expect(Object.keys(doc!.args ?? {}).sort(), key(path)).toEqual([...node.args].sort())
    }
  })

  it("gives examples that run the command they document with options it has", () => {
    for (const { path, node } of commands) {
      for (const example of docs[key(path)]!.examples) {
        const words = example.command.split(/\s+/)
        const target = commands.find((c) => words.slice(0, c.path.length).join(" ") === key(c.path) && c.node.subcommands.length === 0)
        // A group's examples run one of its commands; a command's examples run itself.
        expect(node.subcommands.length > 0 || target?.node === node, example.command).toBe(true)
        for (const word of words.filter((w) => w.startsWith("--"))) {
          expect(target?.node.options.map((o) => o.name), `${example.command}: ${word}`).toContain(word)
        }
      }
    }
  })
})

describe.concurrent("--help", () => {
  for (const { path, node } of commands) {
    it(`${key(path)} --help shows its full usage, every option with its description, and examples`, async () => {
      const run = await plinth(tmpdir(), [...path.slice(1), "--help"])
      expect(run.code).toBe(0)
      expect(run.stderr).toBe("")
      const help = run.stdout
      expect(help.startsWith(`${key(path)}`)).toBe(true)
      expect(help).toContain(`Usage: ${key(path)}`)
      for (const text of boilerplate) expect(help).not.toContain(text)
      for (const option of node.options) {
        expect(help).toContain(option.name)
        // The first words of its description, wherever the line wraps.
        const words = docs[key(path)]!.options![option.name]!.description.split(" ").slice(0, 3).join(" ")
        expect(help.replace(/\s+/g, " ")).toContain(words)
      }
      expect(help).toContain("Examples:\n  $ plinth")
      expect(help).toContain("-h, --help")
    })
  }

  it("plinth --help lists every command with its full path and every exit code", async () => {
    const run = await plinth(tmpdir(), ["--help"])
    for (const { path } of leaves) expect(run.stdout).toMatch(new RegExp(`^  ${key(path)} `, "m"))
    for (const code of [0, 1, 2, 3, 4, 5, 6, 7, 8, 130]) expect(run.stdout).toMatch(new RegExp(`^  ${code} +\\w`, "m"))
    expect(run.stdout).toContain("--completions SHELL")
    expect(run.stdout).toContain("--version")
  })

  it("a command's help lists the exit codes it can end with", async () => {
    const run = await plinth(tmpdir(), ["plugins", "lock", "--help"])
    expect(run.stdout.replace(/\s+/g, " ")).toContain("Exit codes: 0 ok, 1 unexpected, 2 usage, 3 lock out of date, 4 rejected")
  })

  it("--help wins over an unknown option; after -- it is an argument", async () => {
    const help = await plinth(tmpdir(), ["plugins", "verify", "--frob", "--help"])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain("Usage: plinth plugins verify")
    const afterDashes = await plinth(tmpdir(), ["plugins", "list", "--", "--help"])
    expect(afterDashes.code).toBe(2)
    expect(afterDashes.stderr).toContain("'--help'")
  })
})

describe.concurrent("--version and built-ins that do not work", () => {
  it("--version prints exactly one line", async () => {
    const run = await plinth(tmpdir(), ["--version"])
    expect(run.code).toBe(0)
    expect(run.stdout).toMatch(/^\d+\.\d+\.\d+\n$/)
    expect(run.stderr).toBe("")
  })

  for (const option of ["--wizard", "--log-level"]) {
    it(`${option} is refused as an unknown option (exit 2)`, async () => {
      const run = await plinth(tmpdir(), ["plugins", "list", option, ...(option === "--log-level" ? ["debug"] : [])])
      expect(run.code).toBe(2)
      expect(run.stderr).toContain(`'plinth plugins list' has no option '${option}'`)
    })
  }
})

describe("completions", () => {
  let scripts: Record<"bash" | "zsh" | "fish", string>
  beforeAll(async () => {
    const [bash, zsh, fish] = await Promise.all(["bash", "zsh", "fish"].map((shell) => plinth(tmpdir(), ["--completions", shell])))
    for (const run of [bash!, zsh!, fish!]) expect(run.code).toBe(0)
    scripts = { bash: bash!.stdout, zsh: zsh!.stdout, fish: fish!.stdout }
  })

  /** What bash offers for the words typed so far (the last one is being completed), running the script in a real bash. */
  const bashOffers = (words: ReadonlyArray<string>, cwd = tmpdir()): Array<string> => {
    const dir = mkdtempSync(join(tmpdir(), "plinth-completion-"))
    const script = join(dir, "plinth.bash")
    writeFileSync(script, scripts.bash)
    const quoted = words.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(" ")
    const out = execFileSync(
      "bash",
      ["-c", `source "$1"; COMP_WORDS=(${quoted}); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); _plinth_completions; printf '%s\\n' "\${COMPREPLY[@]}"`, "bash", script],
      { cwd, encoding: "utf-8" },
    )
    return out.split("\n").filter((line) => line !== "")
  }

  it("the bash script registers itself for plinth", () => {
    const script = join(mkdtempSync(join(tmpdir(), "plinth-completion-")), "plinth.bash")
    writeFileSync(script, scripts.bash)
    const out = execFileSync("bash", ["-c", `source "$1"; complete -p plinth`, "bash", script], { encoding: "utf-8" })
    expect(out).toContain("-F _plinth_completions plinth")
  })

  it("bash offers the commands of each group", () => {
    expect(bashOffers(["plinth", ""])).toEqual(["plugins", "secrets", "serve", "jobs", "--help", "--version", "--completions"])
    expect(bashOffers(["plinth", "jobs", ""])).toEqual(["submit", "list", "show", "cancel", "watch", "--help"])
    expect(bashOffers(["plinth", "plugins", ""])).toEqual([...leavesOf("plugins").map((l) => l.path[2]!), "--help"])
    expect(bashOffers(["plinth", "secrets", ""])).toEqual(["set", "list", "rm", "--help"])
    expect(bashOffers(["plinth", "plugins", "ver"])).toEqual(["verify"])
  })

  for (const { path, node } of leaves) {
    it(`bash offers every option of '${key(path)}' after '${key(path)} --'`, () => {
      const args = node.args.map((a) => `some-${a}`)
      expect(bashOffers([...path, ...args, "--"]).sort()).toEqual([...node.options.map((o) => o.name), "--help"].sort())
    })
  }

  it("bash completes option values by kind and skips them when finding the command", () => {
    const dir = mkdtempSync(join(tmpdir(), "plinth-completion-cwd-"))
    mkdirSync(join(dir, "plugins-a"))
    mkdirSync(join(dir, "plugins-b"))
    writeFileSync(join(dir, "plugins-file"), "")
    expect(bashOffers(["plinth", "plugins", "verify", "--root", "plugins-"], dir).sort()).toEqual(["plugins-a", "plugins-b"])
    expect(bashOffers(["plinth", "plugins", "verify", "--lock", "plugins-"], dir).sort()).toEqual(["plugins-a", "plugins-b", "plugins-file"])
    expect(bashOffers(["plinth", "plugins", "invoke", "x", "y", "--isolation", ""])).toEqual(["os", "permissions"])
    expect(bashOffers(["plinth", "--completions", ""])).toEqual(["bash", "zsh", "fish"])
    expect(bashOffers(["plinth", "plugins", "invoke", "x", "y", "--input", ""])).toEqual([])
    // `lock` as the value of --lock is not the lock command.
    expect(bashOffers(["plinth", "plugins", "verify", "--lock", "lock", "--j"])).toEqual(["--json"])
  })

  /** Runs `body` in a real zsh after loading the script, with the completion system's functions replaced by printers. */
  const zshOffers = (words: ReadonlyArray<string>): Array<string> => {
    const dir = mkdtempSync(join(tmpdir(), "plinth-completion-"))
    writeFileSync(join(dir, "_plinth"), scripts.zsh)
    const quoted = words.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(" ")
    const driver = [
      "compdef() { : }",
      // `_describe -t TAG DESCRIPTION ARRAY`: print the words of the array's `word:description` entries.
      `_describe() { local -a entries_; entries_=("\${(@P)4}"); print -l -- "\${entries_[@]%%:*}" }`,
      `_files() { print -- "(files $*)" }`,
      "compadd() { shift; print -l -- \"$@\" }",
      `_message() { print -- "(message)" }`,
      `source ${join(dir, "_plinth")}`,
      `words=(${quoted}); CURRENT=\${#words}; _plinth`,
    ].join("\n")
    writeFileSync(join(dir, "driver.zsh"), driver)
    return execFileSync("zsh", ["-f", join(dir, "driver.zsh")], { encoding: "utf-8" }).split("\n").filter((l) => l !== "")
  }

  /** What fish offers for a command line (the last word being completed), in a real fish. */
  const fishOffers = (line: string): Array<string> => {
    const script = join(mkdtempSync(join(tmpdir(), "plinth-completion-")), "plinth.fish")
    writeFileSync(script, scripts.fish)
    const out = execFileSync("fish", ["--no-config", "-c", `source $argv[1]; complete -C $argv[2]`, script, line], { encoding: "utf-8" })
    return out.split("\n").filter((l) => l !== "").map((l) => l.split("\t")[0]!)
  }

  for (const { path, node } of leaves) {
    it(`zsh and fish offer every option of '${key(path)}' after '${key(path)} --'`, () => {
      const args = node.args.map((a) => `some-${a}`)
      const expected = [...node.options.map((o) => o.name), "--help"].sort()
      expect(zshOffers([...path, ...args, "--"]).sort()).toEqual(expected)
      expect(fishOffers([...path, ...args, "--"].join(" ")).sort()).toEqual(expected)
    })
  }

  it("zsh and fish offer the commands of each group and complete option values by kind", () => {
    expect(zshOffers(["plinth", "plugins", ""])).toEqual([...leavesOf("plugins").map((l) => l.path[2]!), "--help"])
    expect(fishOffers("plinth plugins ").sort()).toEqual(leavesOf("plugins").map((l) => l.path[2]!).sort())
    expect(fishOffers("plinth secrets ").sort()).toEqual(["list", "rm", "set"])
    expect(zshOffers(["plinth", "plugins", "invoke", "x", "y", "--isolation", ""])).toEqual(["os", "permissions"])
    expect(fishOffers("plinth plugins invoke x y --isolation ")).toEqual(["os", "permissions"])
    expect(zshOffers(["plinth", "plugins", "verify", "--root", ""])).toEqual(["(files -/)"])
    expect(zshOffers(["plinth", "plugins", "verify", "--lock", "lock", "--j"])).toContain("--json")
    expect(fishOffers("plinth plugins verify --lock lock --j")).toEqual(["--json"])
  })

  it("zsh offers every command and each command's own options, described", () => {
    for (const { path, node } of commands) {
      const line = scripts.zsh.split("\n").find((l) => l.trimStart().startsWith(`"${key(path.slice(1))}") entries=(`))
      expect(line, key(path)).toBeDefined()
      for (const option of node.options) {
        const description = docs[key(path)]!.options![option.name]!.description
        expect(line).toContain(`'${option.name}:${description.slice(0, 30).replace(/'/g, `'\\''`)}`)
      }
      for (const sub of node.subcommands) expect(line).toContain(`'${sub.name}:`)
    }
    expect(scripts.zsh.startsWith("#compdef plinth\n")).toBe(true)
  })

  it("fish offers every command and each command's own options, only after that command", () => {
    for (const { path, node } of commands) {
      const condition = `-n '__plinth_at \\'${key(path.slice(1))}\\''`
      for (const option of node.options) {
        expect(scripts.fish, `${key(path)} ${option.name}`).toContain(`complete -c plinth ${condition} -l ${option.name.slice(2)}`)
      }
      for (const sub of node.subcommands) expect(scripts.fish).toContain(`complete -c plinth ${condition} -a ${sub.name} -d`)
    }
  })
})
