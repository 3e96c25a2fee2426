import { Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { Config, Effect, Either } from "effect"
import { defaultTracePath } from "@plinth/runtime"
import type { UserOutput } from "./Colour.js"
import { DEFAULT_LOCK, DEFAULT_ROOT } from "./Defaults.js"
import type { UsageError } from "./Failures.js"
import { withRootFolder } from "./RootFolder.js"

/*
 * Options shared by the `plinth plugins` commands. Paths are relative to the
 * current directory. Precedence: the flag, then the environment variable, then
 * the default.
 */

export { DEFAULT_LOCK, DEFAULT_ROOT } from "./Defaults.js"
export { rootIsNotAFolder, withRootFolder } from "./RootFolder.js"
export const DEFAULT_TRACE = defaultTracePath

// Whether it is a folder is checked by `requireRootFolder`, after parsing: the parser would word a
// missing folder and a file differently, skip the check for a value from the environment, and
// report it before an unknown flag or a missing argument.
export const root = Options.text("root").pipe(
  Options.withPseudoName("directory"),
  Options.withFallbackConfig(Config.string("PLINTH_ROOT").pipe(Config.withDefault(DEFAULT_ROOT))),
  Options.withDescription(`The folder holding one sub-folder per plugin (env PLINTH_ROOT, default '${DEFAULT_ROOT}').`),
)

/**
 * Runs a command only once its root is a folder (`withRootFolder`).
 * Commands without a root run as they are.
 */
export const requireRootFolder = <Name extends string, R, E, A>(command: Command.Command<Name, R, E, A>) =>
  Command.transformHandler(command, (handler, config: A): Effect.Effect<void, E | UsageError, R | UserOutput> => {
    const [name] = Command.getNames(command)
    return withRootFolder(name!, config as { readonly root?: unknown; readonly json?: unknown }, handler)
  })

// Plain text, not `Options.file`: the parser would refuse a folder or FIFO as a usage error, while an
// unusable lock is a rejection (exit 4) decided by the lock store, which reads it without blocking.
export const lock = Options.text("lock").pipe(
  Options.withPseudoName("file"),
  Options.withFallbackConfig(Config.string("PLINTH_LOCK").pipe(Config.withDefault(DEFAULT_LOCK))),
  Options.withDescription(`The lock file (env PLINTH_LOCK, default '${DEFAULT_LOCK}').`),
)

export const json = Options.boolean("json").pipe(
  Options.withDescription("Print exactly one JSON object on stdout instead of text."),
)

// Plain text, not `Options.file`: the parser dies on some unusable paths (ENOTDIR, ELOOP) and refuses a
// folder as a usage error, while a trace file that cannot be used is TraceUnavailable (exit 1).
export const trace = Options.text("trace").pipe(
  Options.withPseudoName("file"),
  Options.withFallbackConfig(Config.string("PLINTH_TRACE").pipe(Config.withDefault(DEFAULT_TRACE))),
  Options.withDescription(`The call history file, JSON Lines (env PLINTH_TRACE, default '${DEFAULT_TRACE}').`),
)

/** Turns a pure check into an option check: what it refuses is a usage error naming the problem. */
export const checked =
  <A, B>(check: (value: A) => Either.Either<B, string>) =>
  (value: A): Effect.Effect<B, ValidationError.ValidationError> =>
    Either.match(check(value), {
      onLeft: (problem) => Effect.fail(ValidationError.invalidValue(HelpDoc.p(problem))),
      onRight: Effect.succeed,
    })

export const isolation = Options.choice("isolation", ["os", "permissions"]).pipe(
  Options.optional,
  Options.withDescription(
    "The boundary around the worker: 'os' (bubblewrap namespaces around Node's permission model; fails when bwrap is unusable) " +
      "or 'permissions' (Node's permission model alone). Default: the strongest available, with a warning when that is 'permissions'.",
  ),
)

export const DEFAULT_DATA_DIR = ".plinth"

/** Where Plinth keeps its state: the database (`<dir>/plinth.db`), the secret store (`<dir>/secrets/`) and the folders `dataDir` grants (`<dir>/data/`). */
export const dataDir = Options.text("data-dir").pipe(
  Options.withPseudoName("directory"),
  Options.withFallbackConfig(Config.string("PLINTH_DATA_DIR").pipe(Config.withDefault(DEFAULT_DATA_DIR))),
  Options.withDescription(`Where Plinth keeps its state: configs, enabled flags, resource records and secrets (env PLINTH_DATA_DIR, default '${DEFAULT_DATA_DIR}').`),
)
