/*
 * A plain `plinth plugins verify` command line, read without the parser.
 *
 * `verify` is the command run most often (CI, pre-commit hooks, before every
 * deploy), and building @effect/cli's parser and its environment (a terminal on
 * stdin, the config provider, built-in options, suggestions for typos) costs
 * more than verifying the examples does (ADR 0018). Only the simplest lines are
 * read here: `plugins verify` followed by `--root DIR`, `--lock FILE` (or
 * `--root=DIR`, `--lock=FILE`) and `--json`, each at most once, exactly so
 * spelt. Anything else (another spelling, a repeated or unknown option, a
 * stray argument, `--`) goes to the parser, which words every usage error, so
 * a line read here means what the parser would make of it.
 */
import { DEFAULT_LOCK, DEFAULT_ROOT } from "./Defaults.js"

export interface PlainVerify {
  readonly root: string
  readonly lock: string
  readonly json: boolean
}

/** A value the parser would take as it is: not empty, and not something it could read as an option. */
const plainValue = (value: string | undefined): value is string => value !== undefined && value !== "" && !value.startsWith("-")

/**
 * The options of `plugins verify` when `args` (without runtime and script) is
 * such a plain line, with PLINTH_ROOT / PLINTH_LOCK and the defaults filling
 * what is not given, as the parser does; undefined otherwise.
 */
export const plainVerify = (
  args: ReadonlyArray<string>,
  env: Readonly<Record<string, string | undefined>>,
): PlainVerify | undefined => {
  if (args[0] !== "plugins" || args[1] !== "verify") return undefined
  let root: string | undefined
  let lock: string | undefined
  let json = false
  for (let i = 2; i < args.length; i++) {
    const arg = args[i]!
    if (arg === "--json") {
      if (json) return undefined
      json = true
      continue
    }
    const equals = arg.indexOf("=")
    const name = equals === -1 ? arg : arg.slice(0, equals)
    if (name !== "--root" && name !== "--lock") return undefined
    const value = equals === -1 ? args[++i] : arg.slice(equals + 1)
    if (!plainValue(value)) return undefined
    if (name === "--root") {
      if (root !== undefined) return undefined
      root = value
    } else {
      if (lock !== undefined) return undefined
      lock = value
    }
  }
  return { root: root ?? env["PLINTH_ROOT"] ?? DEFAULT_ROOT, lock: lock ?? env["PLINTH_LOCK"] ?? DEFAULT_LOCK, json }
}
