/*
 * The shape of the command tree as the parser knows it (names, options, arguments),
 * and what a command line asks for before the parser sees it: help, the version,
 * a completion script, or a command to parse. Pure: help text and completion
 * scripts are rendered from this shape and the written documentation (Docs.ts).
 */

/** An option of a command, as the parser accepts it. */
export interface OptionShape {
  /** e.g. `--root`. */
  readonly name: string
  /** What its value is called by the parser (`directory`, `file`, `json`, `os | permissions`), or undefined for a flag. */
  readonly value: string | undefined
  readonly required: boolean
}

/** One command: a group (with subcommands) or a leaf (with options and arguments). */
export interface CommandTree {
  readonly name: string
  readonly options: ReadonlyArray<OptionShape>
  /** Positional arguments, in order, without brackets: `id`, `action`. */
  readonly args: ReadonlyArray<string>
  readonly subcommands: ReadonlyArray<CommandTree>
}

/** The shells `--completions` writes a script for; `sh` is taken as bash, as the parser did. */
export const shells = ["bash", "zsh", "fish"] as const
export type Shell = (typeof shells)[number]

/** What a command line asks for, decided before (or instead of) parsing it. */
export type Directive =
  | { readonly _tag: "Help"; readonly path: ReadonlyArray<string> }
  | { readonly _tag: "Version" }
  | { readonly _tag: "Completions"; readonly shell: Shell }
  /** The command line is wrong in a way found here; `path` is the command whose help explains it. */
  | { readonly _tag: "Refused"; readonly path: ReadonlyArray<string>; readonly problem: string }
  /** A leaf command: the parser takes it from here. */
  | { readonly _tag: "Parse"; readonly path: ReadonlyArray<string> }

/** Options the parser builds into every command that plinth does not offer: they are refused, not passed on. */
const refusedBuiltIns = new Set(["--wizard", "--log-level"])

const join = (path: ReadonlyArray<string>) => path.join(" ")

const nameOf = (arg: string) => arg.split("=")[0]!

/**
 * Reads the arguments (without the executable) down the tree. Names are
 * matched case-insensitively, as the parser does. The first of `--help`/`-h`,
 * `--version` and `--completions` wins wherever it stands, even as another
 * option's value, as in the parser (which would act on it otherwise); after
 * `--` nothing is an option.
 */
export const interpret = (tree: CommandTree, args: ReadonlyArray<string>): Directive => {
  let node = tree
  const path = [tree.name]
  let problem: { readonly path: ReadonlyArray<string>; readonly problem: string } | undefined
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg === "--") break
    const option = nameOf(arg)
    if (option === "--help" || option === "-h") return { _tag: "Help", path: [...path] }
    if (option === "--version") return { _tag: "Version" }
    if (option === "--completions") {
      const value = arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : args[i + 1]
      const shell = value === "sh" ? "bash" : shells.find((s) => s === value)
      if (shell !== undefined) return { _tag: "Completions", shell }
      return {
        _tag: "Refused",
        path: [tree.name],
        problem:
          value === undefined
            ? `--completions needs a shell: ${shells.join(", ")}`
            : `--completions takes one of ${shells.join(", ")}, not '${value}'`,
      }
    }
    if (problem !== undefined) continue
    if (refusedBuiltIns.has(option)) {
      problem = { path: [...path], problem: `'${join(path)}' has no option '${option}'` }
      continue
    }
    if (node.subcommands.length === 0) {
      // The parser would take an unknown option for an argument (`show --frob` looks for a plugin
      // named '--frob'); refuse it here. Anything else of a leaf is the parser's to read.
      const previous = args[i - 1]
      const isValue = previous !== undefined && node.options.some((o) => o.name === previous && o.value !== undefined)
      if (arg.startsWith("-") && arg !== "-" && !isValue && !node.options.some((o) => o.name === option)) {
        problem = { path: [...path], problem: `'${join(path)}' has no option '${option}'` }
      }
      continue
    }
    if (arg.startsWith("-")) {
      problem = { path: [...path], problem: `'${join(path)}' has no option '${arg}'` }
      continue
    }
    const next = node.subcommands.find((sub) => sub.name.toLowerCase() === arg.toLowerCase())
    if (next === undefined) {
      problem = {
        path: [...path],
        problem: `'${join(path)}' has no command '${arg}'; use one of: ${node.subcommands.map((s) => s.name).join(", ")}`,
      }
      continue
    }
    node = next
    path.push(next.name)
  }
  if (problem !== undefined) return { _tag: "Refused", ...problem }
  if (node.subcommands.length > 0) {
    return { _tag: "Refused", path, problem: `'${join(path)}' needs a command: ${node.subcommands.map((s) => s.name).join(", ")}` }
  }
  return { _tag: "Parse", path }
}

export interface Location {
  /** The deepest command the arguments name, e.g. `["plinth", "plugins"]`. */
  readonly path: ReadonlyArray<string>
  /** What is wrong with the way there, if it is a command group given a bad name or option, or nothing. */
  readonly problem: string | undefined
}

/** Where a command line leads, and what is wrong on the way, if anything: for re-wording the parser's errors. */
export const locate = (tree: CommandTree, args: ReadonlyArray<string>): Location => {
  const directive = interpret(tree, args)
  switch (directive._tag) {
    case "Refused":
      return { path: directive.path, problem: directive.problem }
    case "Parse":
    case "Help":
      return { path: directive.path, problem: undefined }
    default:
      return { path: [tree.name], problem: undefined }
  }
}

/** Every command of the tree with its full path, groups included, depth first. */
export const commandsOf = (tree: CommandTree, parents: ReadonlyArray<string> = []): Array<{ readonly path: ReadonlyArray<string>; readonly node: CommandTree }> => {
  const path = [...parents, tree.name]
  return [{ path, node: tree }, ...tree.subcommands.flatMap((sub) => commandsOf(sub, path))]
}

/** The node at `path` (which starts with the root's name), if there is one. */
export const nodeAt = (tree: CommandTree, path: ReadonlyArray<string>): CommandTree | undefined =>
  commandsOf(tree).find((entry) => join(entry.path) === join(path))?.node
