import { Command } from "@effect/cli"
import { Effect } from "effect"
import type { CommandTree } from "../CommandTree.js"
import { UsageError } from "../Failures.js"
import { reportFailures } from "../Output.js"

type AnyCommand = Command.Command<any, any, any, any>

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
  const command = Command.make(options.name, {}, () =>
    Effect.fail(new UsageError({ message: `'${path}' needs a command: ${names.join(", ")}`, command: path })).pipe(
      reportFailures("human"),
    ),
  ).pipe(Command.withDescription(options.description), Command.withSubcommands(options.subcommands))
  const tree: CommandTree = {
    name: options.name,
    subcommands: names.map((name) => options.subgroups?.find((g) => g.name === name) ?? { name, subcommands: [] }),
  }
  return { command, tree }
}
