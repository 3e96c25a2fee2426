import { commandsOf, nodeAt, type CommandTree } from "./CommandTree.js"
import { completionsOption, docs as allDocs, exitCodeMeanings, helpOption, versionOption, type CommandDoc, type OptionDoc } from "./Docs.js"
import { plainPalette, type Palette } from "./Colour.js"
import type { ExitCode } from "./ExitCode.js"

/*
 * `--help`, rendered from the command tree (which options exist) and the
 * written documentation (what they are for). Plain text, 80 columns.
 */

const WIDTH = 80

/** Breaks `text` into lines of at most `width` characters (a longer word stays whole), each after `indent`. */
export const wrap = (text: string, indent: number, width = WIDTH): Array<string> => {
  const room = Math.max(20, width - indent)
  const lines: Array<string> = []
  let line = ""
  for (const word of text.split(/\s+/).filter((w) => w !== "")) {
    if (line !== "" && line.length + 1 + word.length > room) {
      lines.push(line)
      line = word
    } else line = line === "" ? word : `${line} ${word}`
  }
  if (line !== "") lines.push(line)
  return lines.map((l) => " ".repeat(indent) + l)
}

const exitCodeLabels: { readonly [C in ExitCode]: string } = {
  0: "ok",
  1: "unexpected",
  2: "usage",
  3: "lock out of date",
  4: "rejected",
  5: "input",
  6: "transient",
  7: "resource",
  8: "fatal",
  130: "interrupted",
}

interface Row {
  readonly term: string
  /** Paragraphs, each wrapped on its own. */
  readonly text: ReadonlyArray<string>
}

/** Terms in a column, their text wrapped beside them (or below, when a term is too long). */
const table = (rows: ReadonlyArray<Row>): Array<string> => {
  const column = Math.min(30, Math.max(...rows.map((r) => r.term.length)) + 4)
  return rows.flatMap(({ term, text }) => {
    const body = text.flatMap((paragraph) => wrap(paragraph, column))
    if (term.length + 4 > column) return [`  ${term}`, ...body]
    const [first = "", ...rest] = body
    return [`  ${term.padEnd(column - 2)}${first.trimStart()}`, ...rest]
  })
}

const optionRow = (name: string, value: string | undefined, doc: OptionDoc | undefined): Row => {
  const placeholder = doc?.placeholder ?? value
  return {
    term: placeholder === undefined ? name : `${name} ${placeholder}`,
    text: doc === undefined ? [] : [doc.description, `e.g. ${doc.example}`],
  }
}

const usageLine = (path: ReadonlyArray<string>, node: CommandTree, docOf: (name: string) => OptionDoc | undefined) => {
  if (node.subcommands.length > 0) return `${path.join(" ")} <command> [options]`
  const required = node.options
    .filter((o) => o.required)
    .map((o) => (o.value === undefined ? o.name : `${o.name} ${docOf(o.name)?.placeholder ?? o.value}`))
  return [...path, ...node.args.map((a) => `<${a}>`), ...required, "[options]"].join(" ")
}

const leavesUnder = (node: CommandTree, path: ReadonlyArray<string>) =>
  commandsOf(node, path.slice(0, -1)).filter((entry) => entry.node.subcommands.length === 0)

/**
 * The help for the command at `path` (which starts with the root's name), or
 * undefined when the tree or the documentation does not know it.
 */
export const renderHelp = (
  tree: CommandTree,
  path: ReadonlyArray<string>,
  version: string,
  palette: Palette = plainPalette,
  docs: Readonly<Record<string, CommandDoc>> = allDocs,
): string | undefined => {
  const heading = (text: string) => palette.strong(text)
  const node = nodeAt(tree, path)
  const doc = docs[path.join(" ")]
  if (node === undefined || doc === undefined) return undefined
  const isRoot = path.length === 1
  const docOf = (name: string) => doc.options?.[name]
  const lines: Array<string> = [
    `${path.join(" ")}${isRoot ? ` ${version}` : ""}: ${doc.summary}`,
    "",
    `${heading("Usage:")} ${usageLine(path, node, docOf)}`,
  ]
  if (doc.description !== undefined) lines.push("", ...wrap(doc.description, 2))

  if (node.subcommands.length > 0) {
    const leaves = leavesUnder(node, path)
    lines.push("", heading("Commands:"), ...table(leaves.map(({ path: p }) => ({ term: p.join(" "), text: [docs[p.join(" ")]?.summary ?? ""] }))))
    lines.push("", ...wrap(`Run '${path.join(" ")} <command> --help' for a command's options.`, 0))
  }

  if (node.args.length > 0) {
    lines.push(
      "",
      heading("Arguments:"),
      ...table(
        node.args.map((a) => {
          const arg = doc.args?.[a]
          return { term: `<${a}>`, text: arg === undefined ? [] : [arg.description, `e.g. ${arg.example}`] }
        }),
      ),
    )
  }

  const builtIn = (term: string, option: OptionDoc): Row => ({ term, text: [option.description, `e.g. ${option.example}`] })
  const builtIns: Array<Row> = [
    builtIn("-h, --help", { ...helpOption, example: `${path.join(" ")} --help` }),
    ...(isRoot ? [builtIn("--version", versionOption), builtIn("--completions SHELL", completionsOption)] : []),
  ]
  lines.push("", heading("Options:"), ...table([...node.options.map((o) => optionRow(o.name, o.value, docOf(o.name))), ...builtIns]))

  lines.push("", heading("Examples:"))
  for (const example of doc.examples) lines.push(`  $ ${example.command}`, ...wrap(example.what, 4))

  if (isRoot) {
    lines.push("", heading("Exit codes:"), ...table(Object.entries(exitCodeMeanings).map(([code, meaning]) => ({ term: code, text: [meaning] }))))
  } else if (doc.exitCodes !== undefined) {
    const codes = doc.exitCodes.map((code) => `${code} ${exitCodeLabels[code]}`).join(", ")
    lines.push("", ...wrap(`Exit codes: ${codes}; 130 interrupted. 'plinth --help' explains each.`, 0))
  }
  return lines.join("\n")
}
