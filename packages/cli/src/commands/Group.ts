import { Command, type Usage } from "@effect/cli"
import { Effect, Option } from "effect"
import type { CommandTree, OptionShape } from "../CommandTree.js"
import { requireRootFolder } from "../CommonOptions.js"
import { UsageError } from "../Failures.js"
import { reportFailures } from "../Output.js"

type AnyCommand = Command.Command<any, any, any, any>

interface Parts {
  readonly options: Array<OptionShape>
  readonly args: Array<string>
}

/** Collects the options and arguments of a command from the parser's own usage description. */
const collect = (usage: Usage.Usage, required: boolean, parts: Parts): void => {
  switch (usage._tag) {
    case "Named": {
      const name = usage.names[0]!
      if (name.startsWith("<")) parts.args.push(name.slice(1, -1))
      else if (name.startsWith("-")) parts.options.push({ name, value: Option.getOrUndefined(usage.acceptedValues), required })
      return
    }
    case "Optional":
    case "Repeated":
      return collect(usage.usage, false, parts)
    case "Concat":
    case "Alternation":
      collect(usage.left, required, parts)
      return collect(usage.right, required, parts)
    case "Empty":
    case "Mixed":
      return
  }
}

/** The shape of a leaf command (its name first in the usage, then its options and arguments). */
export const leafTree = (command: AnyCommand): CommandTree => {
  const parts: Parts = { options: [], args: [] }
  collect(Command.getUsage(command), true, parts)
  const [name] = Command.getNames(command)
  return { name: name!, options: parts.options, args: parts.args, subcommands: [] }
}

/**
 * A command that only groups subcommands; run alone, it names them and fails
 * as a usage error. Adding a subcommand is adding it to the list (with its
 * tree, if it is a group itself).
 */
export const group = <Name extends string, const Subcommands extends readonly [AnyCommand, ...Array<AnyCommand>]>(options: {
  readonly parents: ReadonlyArray<string>
  readonly name: Name
  readonly description: string
  readonly subcommands: Subcommands
  readonly subgroups?: ReadonlyArray<CommandTree>
}) => {
  const names = options.subcommands.flatMap((sub) => [...Command.getNames(sub)])
  const path = [...options.parents, options.name].join(" ")
  // Not reached from `plinth` (a group without a command is refused before parsing); kept for embedders.
  const command = Command.make(options.name, {}, () =>
    Effect.fail(new UsageError({ message: `'${path}' needs a command: ${names.join(", ")}`, command: path })).pipe(
      reportFailures("human"),
    ),
  ).pipe(
    Command.withDescription(options.description),
    // Every command with a root checks it is a folder before its handler runs. The wrapper adds only
    // UsageError and FileSystem, which every plinth run handles and provides.
    Command.withSubcommands(options.subcommands.map(requireRootFolder) as unknown as Subcommands),
  )
  const tree: CommandTree = {
    name: options.name,
    options: [],
    args: [],
    subcommands: options.subcommands.map((sub) => {
      const [name] = Command.getNames(sub)
      return options.subgroups?.find((g) => g.name === name) ?? leafTree(sub)
    }),
  }
  return { command, tree }
}
