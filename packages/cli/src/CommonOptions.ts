import { Options } from "@effect/cli"
import { Config } from "effect"

/*
 * Options shared by the `plinth plugins` commands. Paths are relative to the
 * current directory. Precedence: the flag, then the environment variable, then
 * the default.
 */

export const DEFAULT_ROOT = "plugins"
export const DEFAULT_LOCK = "PLUGINS.lock"

export const root = Options.directory("root").pipe(
  Options.withFallbackConfig(Config.string("PLINTH_ROOT").pipe(Config.withDefault(DEFAULT_ROOT))),
  Options.withDescription(`The folder holding one sub-folder per plugin (env PLINTH_ROOT, default '${DEFAULT_ROOT}').`),
)

export const lock = Options.file("lock").pipe(
  Options.withFallbackConfig(Config.string("PLINTH_LOCK").pipe(Config.withDefault(DEFAULT_LOCK))),
  Options.withDescription(`The lock file (env PLINTH_LOCK, default '${DEFAULT_LOCK}').`),
)

export const json = Options.boolean("json").pipe(
  Options.withDescription("Print exactly one JSON object on stdout instead of text."),
)
