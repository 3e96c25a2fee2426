import { HelpDoc, Options, ValidationError } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import { Config, Effect, Either } from "effect"
import { defaultTracePath } from "@plinth/runtime"

/*
 * Options shared by the `plinth plugins` commands. Paths are relative to the
 * current directory. Precedence: the flag, then the environment variable, then
 * the default.
 */

export const DEFAULT_ROOT = "plugins"
export const DEFAULT_LOCK = "PLUGINS.lock"
export const DEFAULT_TRACE = defaultTracePath

/** The usage error for a `--root` (or PLINTH_ROOT) that is missing or not a folder. */
export const rootIsNotAFolder = (path: string) =>
  `--root '${path}' is not a folder; give the folder that holds one sub-folder per plugin (env PLINTH_ROOT, default '${DEFAULT_ROOT}')`

/**
 * A root that is not a folder is a usage error, the same whether it is missing or a file, and
 * whether it came from the flag, the environment or the default. Plain text with a check of its
 * own, not `Options.directory`: the parser would word the two cases differently and skip the
 * check for a value from the environment.
 */
export const root = Options.text("root").pipe(
  Options.withPseudoName("directory"),
  Options.withFallbackConfig(Config.string("PLINTH_ROOT").pipe(Config.withDefault(DEFAULT_ROOT))),
  Options.mapEffect((path) =>
    Effect.flatMap(FileSystem.FileSystem, (fs) => fs.stat(path)).pipe(
      Effect.map((info) => info.type === "Directory"),
      Effect.orElseSucceed(() => false),
      Effect.flatMap((isFolder) =>
        isFolder
          ? Effect.succeed(path)
          : Effect.fail(ValidationError.invalidValue(HelpDoc.p(rootIsNotAFolder(path)))),
      ),
    ),
  ),
  Options.withDescription(`The folder holding one sub-folder per plugin (env PLINTH_ROOT, default '${DEFAULT_ROOT}').`),
)

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

export const trace = Options.file("trace").pipe(
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
