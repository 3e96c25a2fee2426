/** The shape of the command tree, by name: enough to explain a wrong command line. */
export interface CommandTree {
  readonly name: string
  readonly subcommands: ReadonlyArray<CommandTree>
}

/** Built-in options of every command, and whether each takes a value. */
const builtInOptions: ReadonlyMap<string, boolean> = new Map([
  ["-h", false],
  ["--help", false],
  ["--version", false],
  ["--wizard", false],
  ["--log-level", true],
  ["--completions", true],
])

export interface Location {
  /** The deepest command the arguments name, e.g. `["plinth", "plugins"]`. */
  readonly path: ReadonlyArray<string>
  /** What is wrong with the way there, if it is a command group given a bad name or option, or nothing. */
  readonly problem: string | undefined
}

const join = (path: ReadonlyArray<string>) => path.join(" ")

/**
 * Follows the arguments (without the executable) down the tree. Names are
 * matched case-insensitively, as the parser does; the arguments of a leaf
 * command are left to the parser.
 */
export const locate = (tree: CommandTree, args: ReadonlyArray<string>): Location => {
  let node = tree
  const path = [tree.name]
  for (let i = 0; i < args.length; i++) {
    if (node.subcommands.length === 0) return { path, problem: undefined }
    const arg = args[i]!
    const option = arg.split("=")[0]!
    if (builtInOptions.has(option)) {
      if (builtInOptions.get(option) === true && !arg.includes("=")) i++
      continue
    }
    if (arg.startsWith("-")) return { path, problem: `'${join(path)}' has no option '${arg}'` }
    const next = node.subcommands.find((sub) => sub.name.toLowerCase() === arg.toLowerCase())
    if (next === undefined) {
      return { path, problem: `'${join(path)}' has no command '${arg}'; use one of: ${node.subcommands.map((s) => s.name).join(", ")}` }
    }
    node = next
    path.push(next.name)
  }
  return {
    path,
    problem:
      node.subcommands.length === 0
        ? undefined
        : `'${join(path)}' needs a command: ${node.subcommands.map((s) => s.name).join(", ")}`,
  }
}
