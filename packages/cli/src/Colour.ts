import { stripVTControlCharacters } from "node:util"
import { Console, Context, Effect, Layer } from "effect"

/**
 * Colour is on only for a terminal, and never when `NO_COLOR` is set to a
 * non-empty value (https://no-color.org).
 */
export const colourEnabled = (options: { readonly noColor: string | undefined; readonly isTTY: boolean }): boolean =>
  options.isTTY && (options.noColor === undefined || options.noColor === "")

/** How human output highlights words; `plain` leaves them untouched. */
export interface Palette {
  readonly ok: (text: string) => string
  readonly bad: (text: string) => string
  readonly dim: (text: string) => string
  readonly strong: (text: string) => string
}

const sgr = (open: number, close: number) => (text: string) => `\u001b[${open}m${text}\u001b[${close}m`
const same = (text: string) => text

export const plainPalette: Palette = { ok: same, bad: same, dim: same, strong: same }
export const ansiPalette: Palette = { ok: sgr(32, 39), bad: sgr(31, 39), dim: sgr(2, 22), strong: sgr(1, 22) }

/**
 * Where commands write what the user reads: `out` is stdout, `err` stderr,
 * through the process console (so colour rules apply), with the palette
 * decided for stdout. Separate from `Console` so that the parser's own error
 * printing can be silenced and re-worded without silencing the commands.
 */
export class UserOutput extends Context.Tag("@plinth/cli/UserOutput")<
  UserOutput,
  {
    readonly palette: Palette
    readonly out: (text: string) => Effect.Effect<void>
    readonly err: (text: string) => Effect.Effect<void>
  }
>() {}

export const userOutputFrom = (console: Console.Console, palette: Palette) =>
  UserOutput.of({ palette, out: (text) => console.log(text), err: (text) => console.error(text) })

const stripArgs = (args: ReadonlyArray<unknown>) =>
  args.map((arg) => (typeof arg === "string" ? stripVTControlCharacters(arg) : arg))

/**
 * An Effect `Console` over `base` that removes escape sequences from what it
 * writes to each stream without colour. `@effect/cli` colours its help and
 * error messages unconditionally and prints them through `Console`, so this is
 * where they become plain.
 */
export const plainConsole = (
  base: Console.UnsafeConsole,
  colour: { readonly stdout: boolean; readonly stderr: boolean },
): Console.Console => {
  const out = colour.stdout ? (args: ReadonlyArray<unknown>) => args : stripArgs
  const err = colour.stderr ? (args: ReadonlyArray<unknown>) => args : stripArgs
  const unsafe: Console.UnsafeConsole = {
    ...base,
    assert: (condition, ...args) => base.assert(condition, ...err(args)),
    debug: (...args) => base.debug(...out(args)),
    dir: (item, options) => base.dir(item, options),
    dirxml: (...args) => base.dirxml(...out(args)),
    error: (...args) => base.error(...err(args)),
    group: (...args) => base.group(...out(args)),
    groupCollapsed: (...args) => base.groupCollapsed(...out(args)),
    info: (...args) => base.info(...out(args)),
    log: (...args) => base.log(...out(args)),
    trace: (...args) => base.trace(...err(args)),
    warn: (...args) => base.warn(...err(args)),
  }
  return consoleFrom(unsafe)
}

/** Lifts a synchronous console into Effect's `Console` service. */
export const consoleFrom = (unsafe: Console.UnsafeConsole): Console.Console => ({
  [Console.TypeId]: Console.TypeId,
  assert: (condition, ...args) => Effect.sync(() => unsafe.assert(condition, ...args)),
  clear: Effect.sync(() => unsafe.clear()),
  count: (label) => Effect.sync(() => unsafe.count(label)),
  countReset: (label) => Effect.sync(() => unsafe.countReset(label)),
  debug: (...args) => Effect.sync(() => unsafe.debug(...args)),
  dir: (item, options) => Effect.sync(() => unsafe.dir(item, options)),
  dirxml: (...args) => Effect.sync(() => unsafe.dirxml(...args)),
  error: (...args) => Effect.sync(() => unsafe.error(...args)),
  group: (options) =>
    Effect.sync(() => (options?.collapsed ? unsafe.groupCollapsed(options.label) : unsafe.group(options?.label))),
  groupEnd: Effect.sync(() => unsafe.groupEnd()),
  info: (...args) => Effect.sync(() => unsafe.info(...args)),
  log: (...args) => Effect.sync(() => unsafe.log(...args)),
  table: (data, properties) => Effect.sync(() => unsafe.table(data, properties)),
  time: (label) => Effect.sync(() => unsafe.time(label)),
  timeEnd: (label) => Effect.sync(() => unsafe.timeEnd(label)),
  timeLog: (label, ...args) => Effect.sync(() => unsafe.timeLog(label, ...args)),
  trace: (...args) => Effect.sync(() => unsafe.trace(...args)),
  warn: (...args) => Effect.sync(() => unsafe.warn(...args)),
  unsafe,
})

/**
 * The console and user output for a process, decided once from its environment
 * and whether each stream is a terminal.
 */
export const terminalLayer = (options: {
  readonly env: Readonly<Record<string, string | undefined>>
  readonly stdoutIsTTY: boolean
  readonly stderrIsTTY: boolean
  readonly base: Console.UnsafeConsole
}) => {
  const stdout = colourEnabled({ noColor: options.env["NO_COLOR"], isTTY: options.stdoutIsTTY })
  const stderr = colourEnabled({ noColor: options.env["NO_COLOR"], isTTY: options.stderrIsTTY })
  const console = plainConsole(options.base, { stdout, stderr })
  return Layer.merge(Console.setConsole(console), Layer.succeed(UserOutput, userOutputFrom(console, stdout ? ansiPalette : plainPalette)))
}
