import { commandsOf, type CommandTree, type OptionShape, type Shell } from "./CommandTree.js"
import { completionsOption, docs as allDocs, helpOption, versionOption, type CommandDoc } from "./Docs.js"

/*
 * Shell completion scripts for bash, zsh and fish, written from the command
 * tree: every command's own options are offered after it (the parser's
 * generated scripts offer only the top level's), with the value of an option
 * completed by its kind: folders, files, a fixed choice, or nothing (JSON).
 *
 * Each script walks the words typed so far to find the command (skipping the
 * values of options that take one), then offers what that command accepts.
 */

type ValueKind = { readonly _tag: "directory" } | { readonly _tag: "file" } | { readonly _tag: "choice"; readonly values: ReadonlyArray<string> } | { readonly _tag: "text" }

/** How the value of an option is completed, from the parser's name for it. */
export const valueKind = (value: string): ValueKind => {
  if (value === "directory") return { _tag: "directory" }
  if (value === "file") return { _tag: "file" }
  if (value.includes(" | ")) return { _tag: "choice", values: value.split(" | ") }
  return { _tag: "text" }
}

interface Entry {
  readonly word: string
  readonly description: string
}

interface Place {
  /** The command's path without the program name, e.g. `plugins verify`; "" for the program itself. */
  readonly key: string
  readonly node: CommandTree
  /** Subcommands and options offered there. */
  readonly entries: ReadonlyArray<Entry>
  /** Options that take a value, with how it is completed. */
  readonly valued: ReadonlyArray<{ readonly name: string; readonly kind: ValueKind }>
}

const builtInEntries = (isRoot: boolean): Array<Entry> => [
  { word: "--help", description: helpOption.description },
  ...(isRoot
    ? [
        { word: "--version", description: versionOption.description },
        { word: "--completions", description: completionsOption.description },
      ]
    : []),
]

const places = (tree: CommandTree, docs: Readonly<Record<string, CommandDoc>>): Array<Place> =>
  commandsOf(tree).map(({ path, node }) => {
    const doc = docs[path.join(" ")]
    const optionEntry = (o: OptionShape): Entry => ({ word: o.name, description: doc?.options?.[o.name]?.description ?? "" })
    return {
      key: path.slice(1).join(" "),
      node,
      entries: [
        ...node.subcommands.map((sub) => ({ word: sub.name, description: docs[[...path, sub.name].join(" ")]?.summary ?? "" })),
        ...node.options.map(optionEntry),
        ...builtInEntries(path.length === 1),
      ],
      valued: [
        ...node.options.flatMap((o) => (o.value === undefined ? [] : [{ name: o.name, kind: valueKind(o.value) }])),
        ...(path.length === 1 ? [{ name: "--completions", kind: { _tag: "choice", values: ["bash", "zsh", "fish"] } as ValueKind }] : []),
      ],
    }
  })

/** Lines of a `case` that moves from one command to its subcommand, or skips an option's value. */
const walkCases = (all: ReadonlyArray<Place>, indent: string, moveTo: (key: string) => string, skip: string, caseEnd: string) =>
  all.flatMap((place) => [
    ...place.node.subcommands.map((sub) => {
      const next = place.key === "" ? sub.name : `${place.key} ${sub.name}`
      return `${indent}"${place.key}|${sub.name}") ${moveTo(next)} ${caseEnd}`
    }),
    ...(place.valued.length > 0 ? [`${indent}${place.valued.map((v) => `"${place.key}|${v.name}"`).join("|")}) ${skip} ${caseEnd}`] : []),
  ])

const single = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`

export const bashCompletions = (tree: CommandTree, docs: Readonly<Record<string, CommandDoc>> = allDocs): string => {
  const all = places(tree, docs)
  const fn = `_${tree.name}_completions`
  const valueCase = (place: Place) =>
    place.valued.map(({ name, kind }) => {
      const reply =
        kind._tag === "directory"
          ? `COMPREPLY=($(compgen -d -- "$cur"))`
          : kind._tag === "file"
            ? `COMPREPLY=($(compgen -f -- "$cur"))`
            : kind._tag === "choice"
              ? `COMPREPLY=($(compgen -W ${single(kind.values.join(" "))} -- "$cur"))`
              : `COMPREPLY=()`
      return `        "${place.key}|${name}") ${reply}; return 0 ;;`
    })
  return [
    `# bash completion for ${tree.name}: written by '${tree.name} --completions bash'`,
    `${fn}() {`,
    `    local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" cmd="" skip=0 i w`,
    `    COMPREPLY=()`,
    `    for ((i = 1; i < COMP_CWORD; i++)); do`,
    `        w="\${COMP_WORDS[i]}"`,
    `        if ((skip)); then skip=0; continue; fi`,
    `        case "$cmd|$w" in`,
    ...walkCases(all, "            ", (key) => `cmd=${single(key)}`, "skip=1", ";;"),
    `        esac`,
    `    done`,
    `    case "$cmd|$prev" in`,
    ...all.flatMap(valueCase),
    `    esac`,
    `    case "$cmd" in`,
    ...all.map((place) => `        "${place.key}") COMPREPLY=($(compgen -W ${single(place.entries.map((e) => e.word).join(" "))} -- "$cur")) ;;`),
    `    esac`,
    `    return 0`,
    `}`,
    `complete -o filenames -F ${fn} ${tree.name}`,
    "",
  ].join("\n")
}

/** A zsh `_describe` entry: `word:description`, colons in the word escaped. */
const zshEntry = (entry: Entry) => single(`${entry.word.replace(/:/g, "\\:")}:${entry.description}`)

export const zshCompletions = (tree: CommandTree, docs: Readonly<Record<string, CommandDoc>> = allDocs): string => {
  const all = places(tree, docs)
  const fn = `_${tree.name}`
  const valueCase = (place: Place) =>
    place.valued.map(({ name, kind }) => {
      const action =
        kind._tag === "directory"
          ? "_files -/"
          : kind._tag === "file"
            ? "_files"
            : kind._tag === "choice"
              ? `compadd -- ${kind.values.join(" ")}`
              : `_message ${single(`${name} value`)}`
      return `    "${place.key}|${name}") ${action}; return ;;`
    })
  return [
    `#compdef ${tree.name}`,
    `# zsh completion for ${tree.name}: written by '${tree.name} --completions zsh'`,
    `${fn}() {`,
    // `path` is special in zsh (it is $PATH as an array), hence `cmd`.
    `  local cmd="" w i skip=0`,
    `  local -a entries`,
    `  for ((i = 2; i < CURRENT; i++)); do`,
    `    w=\${words[i]}`,
    `    if ((skip)); then skip=0; continue; fi`,
    `    case "$cmd|$w" in`,
    ...walkCases(all, "      ", (key) => `cmd=${single(key)}`, "skip=1", ";;"),
    `    esac`,
    `  done`,
    `  case "$cmd|\${words[CURRENT-1]}" in`,
    ...all.flatMap(valueCase),
    `  esac`,
    `  case "$cmd" in`,
    ...all.map((place) => `    "${place.key}") entries=(${place.entries.map(zshEntry).join(" ")}) ;;`),
    `  esac`,
    `  _describe -t commands ${single(tree.name)} entries`,
    `}`,
    // Works both from a file on $fpath (autoloaded) and when sourced.
    `if [[ \${zsh_eval_context[-1]} == loadautofunc ]]; then ${fn} "$@"; else compdef ${fn} ${tree.name}; fi`,
    "",
  ].join("\n")
}

const fishQuote = (text: string) => `'${text.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`

export const fishCompletions = (tree: CommandTree, docs: Readonly<Record<string, CommandDoc>> = allDocs): string => {
  const all = places(tree, docs)
  const pathFn = `__${tree.name}_command`
  const atFn = `__${tree.name}_at`
  const lines = [
    `# fish completion for ${tree.name}: written by '${tree.name} --completions fish'`,
    `function ${pathFn}`,
    `    set -l cmd ""`,
    `    set -l skip 0`,
    `    for w in (commandline -opc)[2..-1]`,
    `        if test $skip -eq 1`,
    `            set skip 0`,
    `            continue`,
    `        end`,
    `        switch "$cmd|$w"`,
    ...all.flatMap((place) => [
      ...place.node.subcommands.map((sub) => {
        const next = place.key === "" ? sub.name : `${place.key} ${sub.name}`
        return `            case "${place.key}|${sub.name}"\n                set cmd ${fishQuote(next)}`
      }),
      ...(place.valued.length > 0 ? [`            case ${place.valued.map((v) => `"${place.key}|${v.name}"`).join(" ")}\n                set skip 1`] : []),
    ]),
    `        end`,
    `    end`,
    `    echo $cmd`,
    `end`,
    `function ${atFn}`,
    `    set -l cmd (${pathFn})`,
    `    test "$cmd" = "$argv[1]"`,
    `end`,
    `complete -c ${tree.name} -f`,
  ]
  for (const place of all) {
    const when = `-n ${fishQuote(`${atFn} ${fishQuote(place.key)}`)}`
    for (const sub of place.node.subcommands) {
      const description = docs[[tree.name, ...(place.key === "" ? [] : place.key.split(" ")), sub.name].join(" ")]?.summary ?? ""
      lines.push(`complete -c ${tree.name} ${when} -a ${sub.name} -d ${fishQuote(description)}`)
    }
    const valued = new Map(place.valued.map((v) => [v.name, v.kind]))
    for (const entry of place.entries.filter((e) => e.word.startsWith("--"))) {
      const kind = valued.get(entry.word)
      const value =
        kind === undefined
          ? ""
          : kind._tag === "directory"
            ? " -x -a '(__fish_complete_directories)'"
            : kind._tag === "file"
              ? " -r -F"
              : kind._tag === "choice"
                ? ` -x -a ${fishQuote(kind.values.join(" "))}`
                : " -x"
      const short = entry.word === "--help" ? " -s h" : ""
      lines.push(`complete -c ${tree.name} ${when} -l ${entry.word.slice(2)}${short}${value} -d ${fishQuote(entry.description)}`)
    }
  }
  return [...lines, ""].join("\n")
}

export const completionScript = (shell: Shell, tree: CommandTree): string =>
  shell === "bash" ? bashCompletions(tree) : shell === "zsh" ? zshCompletions(tree) : fishCompletions(tree)
