import { ExitCode } from "./ExitCode.js"
import { DEFAULT_DATA_DIR, DEFAULT_LOCK, DEFAULT_ROOT, DEFAULT_TRACE } from "./CommonOptions.js"
import { DEFAULT_LIMIT } from "./commands/Trace.js"

/*
 * What `--help` says: a written description and an example for every command,
 * option and argument. The parser's tree says which options exist; this says
 * what they are for. A test checks that the two agree, so an option added to a
 * command without a description here fails it.
 */

export interface OptionDoc {
  /** What the value is called in help (`DIR`, `FILE`, `JSON`); flags have none. */
  readonly placeholder?: string
  readonly description: string
  /** A command-line fragment using the option. */
  readonly example: string
}

export interface Example {
  readonly command: string
  readonly what: string
}

export interface CommandDoc {
  /** One line: what the command does. */
  readonly summary: string
  /** More, if there is more to say. */
  readonly description?: string
  readonly args?: Readonly<Record<string, { readonly description: string; readonly example: string }>>
  readonly options?: Readonly<Record<string, OptionDoc>>
  readonly examples: ReadonlyArray<Example>
  /** The exit codes this command can end with, besides 130 (interrupted). */
  readonly exitCodes?: ReadonlyArray<ExitCode>
}

/** What each exit code means; every code has a line (a new code without one does not compile). */
export const exitCodeMeanings: { readonly [C in ExitCode]: string } = {
  [ExitCode.Ok]: "success (also --help, --version, --completions)",
  [ExitCode.Failure]: "unexpected: the lock or plugin.json cannot be written, the trace file, database or secret store cannot be used, a bug in plinth",
  [ExitCode.Usage]: "usage error: unknown command or option, missing or bad argument, --root that is not a folder, an unknown plugin id",
  [ExitCode.LockOutOfDate]: "lock --check: the lock does not pin the plugins as they are on disk; describe --check: a manifest is stale; nothing was written",
  [ExitCode.Rejected]: "rejected: a plugin or the lock failed verification (changed file, unlocked plugin, missing folder, bad manifest or lock), or serve --cluster: this runner's plugins differ from the cluster's",
  [ExitCode.Input]: "input: --input/--config/--set not JSON or refused by the schemas, an unknown action, a required secret not set, a disabled plugin",
  [ExitCode.Transient]: "transient: timeout, unexpected worker exit, the plugin's temporary failure; retrying may work",
  [ExitCode.Resource]: "resource: the plugin ran short, its worker ran out of memory or was killed",
  [ExitCode.Fatal]: "fatal: plugin defect, sandbox denial, declaration drift, output the manifest refuses, worker start failure",
  [ExitCode.Interrupted]: "interrupted (SIGINT/SIGTERM)",
}

const root: OptionDoc = {
  placeholder: "DIR",
  description: `The folder holding one sub-folder per plugin; must be a folder (env PLINTH_ROOT, default '${DEFAULT_ROOT}').`,
  example: "--root vendor/plugins",
}

const lock: OptionDoc = {
  placeholder: "FILE",
  description: `The lock file (env PLINTH_LOCK, default '${DEFAULT_LOCK}').`,
  example: "--lock vendor/PLUGINS.lock",
}

const json = (what = "one JSON object on stdout instead of text"): OptionDoc => ({
  description: `Print ${what}: {"ok": true, …} or {"ok": false, "error": {"_tag": …, "message": …}}.`,
  example: "--json",
})

const isolation: OptionDoc = {
  placeholder: "os|permissions",
  description:
    "The boundary around the worker: 'os' (bubblewrap namespaces around Node's permission model; fails when bwrap is unusable) " +
    "or 'permissions' (Node's permission model alone). Default: the strongest available, with a warning when that is 'permissions'.",
  example: "--isolation permissions",
}

const trace: OptionDoc = {
  placeholder: "FILE",
  description: `The call history file, JSON Lines (env PLINTH_TRACE, default '${DEFAULT_TRACE}').`,
  example: "--trace /tmp/calls.jsonl",
}

const dataDir: OptionDoc = {
  placeholder: "DIR",
  description: `Where Plinth keeps its state: the database in DIR/plinth.db (configs, enabled flags, resource records), the secret store in DIR/secrets, the folders 'dataDir' grants in DIR/data (env PLINTH_DATA_DIR, default '${DEFAULT_DATA_DIR}').`,
  example: "--data-dir /var/lib/plinth",
}

const secretPlugin = { description: "The plugin id the secret belongs to.", example: "weather" }
const secretName = {
  description: "The secret's name, as the plugin's manifest declares it: an upper-case letter, then up to 63 upper-case letters, digits or '_'.",
  example: "API_TOKEN",
}

const id = { description: "The plugin id (its folder name under the root).", example: "greeter" }

/** The built-in options, shown where they apply. */
export const helpOption: OptionDoc = { description: "Show this help.", example: "plinth plugins verify --help" }
export const versionOption: OptionDoc = { description: "Print the version, on one line.", example: "plinth --version" }
export const completionsOption: OptionDoc = {
  placeholder: "SHELL",
  description: "Print a completion script for bash, zsh or fish (see the README for where to put it).",
  example: "plinth --completions bash > ~/.local/share/bash-completion/completions/plinth",
}

/** The documentation of every command, by its full path. */
export const docs: Readonly<Record<string, CommandDoc>> = {
  plinth: {
    summary: "Load Node.js plugins only after verifying every file against PLUGINS.lock.",
    description:
      "Observation commands (verify, list, show, report, trace, stats) read manifests, the lock, the call history and the resource records and never run plugin code; " +
      "lock changes the lock; enable, disable and config change a plugin's persisted state under --data-dir; " +
      "invoke and describe run plugin code, each plugin in its own sandboxed worker process; " +
      "serve runs them as a long-running host with a job queue, an HTTP API and a dashboard, which jobs talks to. " +
      "Paths are relative to the current folder; a flag beats its environment variable, which beats the default.",
    examples: [
      { command: "plinth plugins lock", what: "Pin the plugins under ./plugins in ./PLUGINS.lock, after review." },
      { command: "plinth plugins verify", what: "Check that every plugin is exactly what the lock pins." },
      { command: `plinth plugins invoke greeter greet --input '{"name": "Ada"}'`, what: "Call an action in a sandboxed worker." },
    ],
  },
  "plinth plugins": {
    summary: "Verify, pin, inspect, configure and run plugins.",
    examples: [
      { command: "plinth plugins list", what: "The plugins under ./plugins, with version and lock status." },
      { command: "plinth plugins verify --json", what: "Verify, for a program: one JSON object on stdout." },
    ],
  },
  "plinth plugins verify": {
    summary: "Check every plugin's files against the lock. Runs no plugin code.",
    description:
      "Prints one line per plugin (id, version, digest), or the rejection: which plugin broke which rule, and the files added, removed or changed.",
    options: { "--root": root, "--lock": lock, "--json": json() },
    examples: [
      { command: "plinth plugins verify", what: "Verify ./plugins against ./PLUGINS.lock." },
      { command: "plinth plugins verify --root vendor/plugins --lock vendor/PLUGINS.lock --json", what: "Verify another tree, for a program." },
    ],
    exitCodes: [ExitCode.Ok, ExitCode.Usage, ExitCode.Rejected],
  },
  "plinth plugins lock": {
    summary: "Pin the plugins as they are on disk in the lock, after review; prints what changed.",
    description:
      "Prints added (+), removed (-) and changed (~) plugins. The lock is written atomically: readers see the old lock or the new one, never half.",
    options: {
      "--root": root,
      "--lock": lock,
      "--check": {
        description: "Change nothing; exit 3 if the lock does not pin the plugins as they are on disk (for CI).",
        example: "--check",
      },
      "--json": json(),
    },
    examples: [
      { command: "plinth plugins lock", what: "Write ./PLUGINS.lock for the plugins under ./plugins." },
      { command: "plinth plugins lock --check", what: "In CI: fail (exit 3) when someone changed a plugin without re-locking." },
    ],
    exitCodes: [ExitCode.Ok, ExitCode.Failure, ExitCode.Usage, ExitCode.LockOutOfDate, ExitCode.Rejected],
  },
  "plinth plugins list": {
    summary: "List the plugins with their versions and lock status. Runs no plugin code.",
    options: { "--root": root, "--lock": lock, "--json": json() },
    examples: [
      { command: "plinth plugins list", what: "One line per plugin: id, version, locked or unlocked, description." },
      { command: "plinth plugins list --json", what: "The same with every manifest, for a program." },
    ],
    exitCodes: [ExitCode.Ok, ExitCode.Usage, ExitCode.Rejected],
  },
  "plinth plugins show": {
    summary: "Show a plugin's manifest, declared actions, config schema and lock status. Runs no plugin code.",
    args: { id },
    options: { "--root": root, "--lock": lock, "--json": json() },
    examples: [
      { command: "plinth plugins show greeter", what: "The greeter plugin's actions with their input and output JSON Schemas." },
      { command: "plinth plugins show greeter --json", what: "The same, for a program." },
    ],
    exitCodes: [ExitCode.Ok, ExitCode.Usage, ExitCode.Rejected],
  },
  "plinth plugins invoke": {
    summary: "Verify the plugins, start one in a sandboxed worker and call an action. Runs plugin code.",
    description:
      "The input is JSON, given with exactly one of --input JSON, --input - (read from stdin) or --input-file PATH; " +
      "use stdin or a file for inputs larger than a command line allows (Linux caps one argument at 128 KiB). " +
      "A streaming action prints each item as it arrives; progress goes to stderr. Every call is recorded in the trace file.",
    args: {
      id,
      action: { description: "The action to call, as the manifest declares it.", example: "greet" },
    },
    options: {
      "--input": {
        placeholder: "JSON|-",
        description: "The action's input as JSON, or '-' to read it from stdin. Not JSON, or refused by the action's schema: exit 5.",
        example: `--input '{"name": "Ada"}'`,
      },
      "--input-file": {
        placeholder: "PATH",
        description: "Read the action's input (JSON) from this file instead.",
        example: "--input-file input.json",
      },
      "--config": {
        placeholder: "JSON",
        description:
          "The plugin's config as JSON; its defaults fill in what is left out. Refused by the manifest's config schema: exit 5, before the worker starts.",
        example: `--config '{"greeting": "Hi"}'`,
      },
      "--timeout": {
        placeholder: "DURATION",
        description: "Cancel the call if it has not finished within this (waiting for its worker included): 500ms, 5s, 2m, 48h; exit 6.",
        example: "--timeout 5s",
      },
      "--json": json(`JSON Lines on stdout: {"item": …} per streamed item, then one outcome object`),
      "--root": root,
      "--lock": lock,
      "--trace": trace,
      "--isolation": isolation,
      "--force": {
        description: "Call the plugin even if 'plinth plugins disable' disabled it (without --force: PluginDisabled, exit 5).",
        example: "--force",
      },
      "--data-dir": {
        ...dataDir,
        description: `${dataDir.description} The plugin's declared secrets are read from its store when the worker starts; its config and enabled flag as 'plinth plugins config' and 'disable' recorded them apply unless --config or --force override them.`,
      },
    },
    examples: [
      { command: `plinth plugins invoke greeter greet --input '{"name": "Ada"}'`, what: "Call greeter's greet action." },
      { command: "plinth plugins invoke word-count count --input - < input.json", what: "Read a large input from stdin." },
      { command: `plinth plugins invoke showcase count --input '{"to": 3}' --json`, what: "Stream items as JSON Lines, then the outcome." },
    ],
    exitCodes: [
      ExitCode.Ok,
      ExitCode.Failure,
      ExitCode.Usage,
      ExitCode.Rejected,
      ExitCode.Input,
      ExitCode.Transient,
      ExitCode.Resource,
      ExitCode.Fatal,
    ],
  },
  "plinth plugins describe": {
    summary: "Load a plugin in a sandboxed worker and print what its code declares. RUNS PLUGIN CODE.",
    description:
      "Prints the actions with their input/output JSON Schemas and the config schema, as the code declares them " +
      "(use 'show' to read the manifest without running anything). --write stores the declaration in plugin.json; re-lock after review. " +
      "--check is the drift check for CI: it verifies every plugin against the lock, loads each from its verified bytes " +
      "and exits 3 when a manifest differs from what its code declares; without --check the lock is not read.",
    args: { id: { description: "The plugin id (its folder name under the root). Optional with --check, which then checks every plugin.", example: "greeter" } },
    options: {
      "--write": {
        description: "Store the declaration in the plugin's plugin.json; review the change, then run 'plinth plugins lock'.",
        example: "--write",
      },
      "--check": {
        description: "Change nothing; verify against the lock, load each plugin (or only <id>) from its verified bytes, exit 3 if a manifest is stale (for CI).",
        example: "--check",
      },
      "--json": json(),
      "--root": root,
      "--lock": { ...lock, description: `The lock file, read only with --check (env PLINTH_LOCK, default '${DEFAULT_LOCK}').` },
      "--isolation": isolation,
    },
    examples: [
      { command: "plinth plugins describe greeter", what: "What greeter's code declares, compared with its plugin.json." },
      { command: "plinth plugins describe greeter --write", what: "Regenerate the manifest's actions and config after changing the code." },
      { command: "plinth plugins describe --check", what: "In CI: fail (exit 3) when a manifest no longer matches its plugin's code." },
    ],
    exitCodes: [
      ExitCode.Ok,
      ExitCode.Failure,
      ExitCode.Usage,
      ExitCode.LockOutOfDate,
      ExitCode.Rejected,
      ExitCode.Input,
      ExitCode.Transient,
      ExitCode.Resource,
      ExitCode.Fatal,
    ],
  },
  "plinth plugins report": {
    summary: "Write the evidence of one verification to a folder for reviewers and auditors. Runs no plugin code.",
    description:
      "Writes report.json (per plugin: verified or rejected with the reason, expected and actual digests, file counts, the manifest " +
      "with its actions and schemas; the lock's SHA-256; Plinth, Node and OS versions; the isolation tiers available), " +
      "a copy of the lock, manifests/<id>.json and a one-page REPORT.md. The report is written even when a plugin is rejected (exit 4).",
    options: {
      "--out": {
        placeholder: "DIR",
        description: "The folder to write the report to; it must be missing or empty, and outside the plugin root.",
        example: "--out review/2026-12-01",
      },
      "--force": { description: "Replace a previous report in --out (a folder holding anything else is still refused).", example: "--force" },
      "--root": root,
      "--lock": lock,
      "--json": json("report.json's object on stdout as well"),
    },
    examples: [
      { command: "plinth plugins report --out review", what: "Write ./review/REPORT.md and the evidence behind it." },
      { command: "plinth plugins report --out review --force --json", what: "Replace the previous report and print it for a program." },
    ],
    exitCodes: [ExitCode.Ok, ExitCode.Failure, ExitCode.Usage, ExitCode.Rejected],
  },
  "plinth plugins trace": {
    summary: "Show the recorded history of plugin calls, oldest first. Runs no plugin code.",
    description:
      "Time, plugin, instance, action, duration, outcome, category and message, items for streams. " +
      "Reads only the trace file, which every invoke appends to (it keeps the last 1,000 calls); it takes no --root or --lock.",
    options: {
      "--limit": {
        placeholder: "N",
        description: `How many of the most recent calls to show, at least 1 (default ${DEFAULT_LIMIT}).`,
        example: "--limit 5",
      },
      "--json": json(),
      "--trace": trace,
    },
    examples: [
      { command: "plinth plugins trace", what: `The last ${DEFAULT_LIMIT} calls.` },
      { command: "plinth plugins trace --limit 5 --json", what: "The last 5 calls, for a program." },
    ],
    exitCodes: [ExitCode.Ok, ExitCode.Failure, ExitCode.Usage],
  },
  "plinth plugins enable": {
    summary: "Enable a plugin again: invoke and the PluginManager run its calls. Runs no plugin code.",
    description:
      "Records the enabled flag of the plugin's default instance in DIR/plinth.db, where invoke and every PluginManager over the same data directory read it. " +
      "The plugin must be under --root and verify against the lock. Enabling an enabled plugin changes nothing.",
    args: { id },
    options: { "--root": root, "--lock": lock, "--data-dir": dataDir, "--json": json() },
    examples: [
      { command: "plinth plugins enable greeter", what: "Let greeter's calls run again." },
      { command: "plinth plugins enable greeter --data-dir /var/lib/plinth --json", what: "The same in another data directory, for a program." },
    ],
    exitCodes: [ExitCode.Ok, ExitCode.Failure, ExitCode.Usage, ExitCode.Rejected],
  },
  "plinth plugins disable": {
    summary: "Disable a plugin: its calls are refused with PluginDisabled until it is enabled. Runs no plugin code.",
    description:
      "Records the enabled flag of the plugin's default instance in DIR/plinth.db. invoke then refuses the plugin (PluginDisabled, exit 5) unless given --force; " +
      "a PluginManager over the same data directory loads it disabled. The plugin must be under --root and verify against the lock.",
    args: { id },
    options: { "--root": root, "--lock": lock, "--data-dir": dataDir, "--json": json() },
    examples: [
      { command: "plinth plugins disable greeter", what: "Refuse greeter's calls until 'plinth plugins enable greeter'." },
      { command: "plinth plugins disable greeter --json", what: "The same, for a program: {\"ok\": true, \"enabled\": false, \"changed\": …}." },
    ],
    exitCodes: [ExitCode.Ok, ExitCode.Failure, ExitCode.Usage, ExitCode.Rejected],
  },
  "plinth plugins config": {
    summary: "Show the persisted config of a plugin, or replace it with --set. Runs no plugin code.",
    description:
      "The config of the plugin's default instance in DIR/plinth.db, used by invoke (unless --config is given) and by every PluginManager over the same data directory. " +
      "--set replaces the whole config after checking it against the manifest's config schema, as the PluginManager checks a load: " +
      "unknown keys are refused (ConfigInvalid, exit 5) unless --lenient drops them. The plugin's defaults fill in what is left out when it starts.",
    args: { id },
    options: {
      "--set": {
        placeholder: "JSON",
        description: "Replace the stored config with this JSON object, checked first; a refused config changes nothing (exit 5).",
        example: `--set '{"greeting": "Hi"}'`,
      },
      "--lenient": {
        description: "With --set: drop keys the config schema does not know instead of refusing the config.",
        example: `--set '{"greeting": "Hi", "old": 1}' --lenient`,
      },
      "--root": root,
      "--lock": lock,
      "--data-dir": dataDir,
      "--json": json(),
    },
    examples: [
      { command: "plinth plugins config greeter", what: "The stored config and enabled flag of greeter." },
      { command: `plinth plugins config greeter --set '{"greeting": "Hi"}'`, what: "Store a new config; the next invoke uses it." },
    ],
    exitCodes: [ExitCode.Ok, ExitCode.Failure, ExitCode.Usage, ExitCode.Rejected, ExitCode.Input],
  },
  "plinth plugins stats": {
    summary: "Show what the plugins' calls have cost: calls, success rate, wall and CPU time, peak memory. Runs no plugin code.",
    description:
      "Reads the resource records a PluginManager keeps in DIR/plinth.db: one per plugin, plugin digest and config hash, " +
      "with the mean, standard deviation and largest wall time, CPU time and peak RSS. Reads no plugin folder: a record outlives the version it measured.",
    args: { id: { description: "Only this plugin's records (default: every plugin's).", example: "greeter" } },
    options: { "--data-dir": dataDir, "--json": json() },
    examples: [
      { command: "plinth plugins stats", what: "Every record, one line each." },
      { command: "plinth plugins stats greeter --json", what: "greeter's records, for a program." },
    ],
    exitCodes: [ExitCode.Ok, ExitCode.Failure, ExitCode.Usage],
  },
  "plinth secrets": {
    summary: "Set, list and remove the secrets plugins declare; values are never printed.",
    description:
      "A plugin declares the secrets it needs in plugin.json ('secrets': [{ name, required, description }]); its worker receives only those, " +
      "in the start handshake (never argv or the environment), as Redacted values in the action context. A required secret that is not set " +
      "refuses the start (MissingSecret, exit 5) before any process starts. Values live in DIR/secrets/<plugin>.json (folder 0700, files 0600).",
    examples: [
      { command: "plinth secrets set weather API_TOKEN < token.txt", what: "Set weather's API_TOKEN from a file, without it touching the command line." },
      { command: "plinth secrets list", what: "Every plugin's secret names, and the declared ones that are missing." },
    ],
  },
  "plinth secrets set": {
    summary: "Set a plugin's secret; the value is read from stdin, or from a prompt that does not echo on a terminal.",
    description:
      "Never from the command line, where ps and shell history would keep it. One trailing line break is removed; an empty value is refused; " +
      "with --json the value must come on stdin (the prompt would write to stdout). " +
      "The store is written atomically (a temporary file renamed over the old one). The value takes effect at the plugin's next start.",
    args: { plugin: secretPlugin, name: secretName },
    options: { "--data-dir": dataDir, "--json": json() },
    examples: [
      { command: "plinth secrets set weather API_TOKEN", what: "Prompt for the value (not echoed) and store it." },
      { command: "plinth secrets set weather API_TOKEN --json < token.txt", what: "Store it from a file (or a pipe), for a script." },
    ],
    exitCodes: [ExitCode.Ok, ExitCode.Failure, ExitCode.Usage],
  },
  "plinth secrets list": {
    summary: "List secret names per plugin, whether each is set, and the declared ones that are missing. Never prints values.",
    description:
      "Reads the store and, for what each plugin declares, the plugins' plugin.json under --root (no verification, no plugin code). " +
      "A name set but not declared is listed as such: its plugin never receives it.",
    args: { plugin: { description: "Only this plugin (default: every plugin that declares or holds a secret).", example: "weather" } },
    options: {
      "--data-dir": dataDir,
      "--root": { ...root, description: `The folder holding one sub-folder per plugin, read for what each declares (env PLINTH_ROOT, default '${DEFAULT_ROOT}').` },
      "--json": json(),
    },
    examples: [
      { command: "plinth secrets list", what: "Every plugin's secrets: set, missing, optional or not declared." },
      { command: "plinth secrets list weather --json", what: "One plugin's secret names, for a program." },
    ],
    exitCodes: [ExitCode.Ok, ExitCode.Failure, ExitCode.Usage],
  },
  "plinth secrets rm": {
    summary: "Remove a plugin's secret; removing its last one removes its file from the store.",
    args: { plugin: secretPlugin, name: secretName },
    options: { "--data-dir": dataDir, "--json": json() },
    examples: [{ command: "plinth secrets rm weather API_TOKEN", what: "Forget weather's API_TOKEN." }],
    exitCodes: [ExitCode.Ok, ExitCode.Failure, ExitCode.Usage],
  },
  "plinth serve": {
    summary: "Run the plugins as a long-running host: the job queue, an HTTP API and a live dashboard, until Ctrl-C. Runs plugin code.",
    description:
      "Verifies every plugin against the lock, starts each plugin's default instance, and serves the API (its OpenAPI document at /openapi.json), " +
      "Server-Sent Events at /api/events and the dashboard at /. Jobs are journaled in DIR/plinth.db: those pending when the host stopped run after the next start. " +
      "Every request that changes anything needs the token made at the first start, kept in DIR/serve/token (0600) and printed once, in the dashboard URL (#token=…). " +
      "While it runs, DIR/serve/server.json names its URL for 'plinth jobs'. SIGINT or SIGTERM stops every worker, removes server.json and exits 130. " +
      "With --cluster it is a runner of a cluster instead: the jobs are kept in a Postgres database shared with the other runners, which run them between them; " +
      "the API, the dashboard and 'plinth jobs' are the same against any runner. Every runner must have the same plugin root and PLUGINS.lock: " +
      "one whose plugins differ from the running runners' refuses to join (exit 4). See the README's \"Scaling out\".",
    options: {
      "--root": root,
      "--lock": lock,
      "--data-dir": dataDir,
      "--port": { placeholder: "N", description: "The TCP port to listen on (default 7717); 0 picks a free one, printed at start.", example: "--port 0" },
      "--host": {
        placeholder: "ADDRESS",
        description:
          "The address to listen on (default 127.0.0.1, this machine only). Another address is warned about: anyone who can reach it can read the queue.",
        example: "--host 127.0.0.1",
      },
      "--isolation": isolation,
      "--cluster": {
        description: "Run as a runner of a cluster: the job queue in the Postgres database of --database, shared with the other runners, instead of DIR/plinth.db.",
        example: "--cluster --database postgres://plinth@10.0.0.4/plinth --runner-address 10.0.0.5:7718",
      },
      "--database": {
        placeholder: "URL",
        description:
          "With --cluster: the cluster's Postgres database, postgres://USER:PASSWORD@HOST:PORT/DATABASE (env PLINTH_DATABASE_URL, which keeps the password off the command line). Shown without its password.",
        example: "--database postgres://plinth@10.0.0.4:5432/plinth",
      },
      "--runner-address": {
        placeholder: "HOST:PORT",
        description: "With --cluster: the address the other runners reach this one at; it listens there unless --runner-listen says otherwise.",
        example: "--runner-address 10.0.0.5:7718",
      },
      "--runner-listen": {
        placeholder: "HOST:PORT",
        description: "With --cluster: where to listen for the other runners when that is not --runner-address (behind NAT, or 0.0.0.0).",
        example: "--runner-listen 0.0.0.0:7718",
      },
    },
    examples: [
      { command: "plinth serve", what: "Serve ./plugins on http://127.0.0.1:7717; open the printed dashboard URL." },
      { command: "plinth serve --port 0 --data-dir /var/lib/plinth", what: "Any free port, state in /var/lib/plinth." },
      {
        command: "plinth serve --cluster --database postgres://plinth@10.0.0.4/plinth --runner-address 10.0.0.5:7718",
        what: "A runner of the cluster whose jobs are in that database; start one like it on every host (a password goes in PLINTH_DATABASE_URL).",
      },
    ],
    exitCodes: [ExitCode.Failure, ExitCode.Usage, ExitCode.Rejected],
  },
  "plinth jobs": {
    summary: "Submit, list, show, cancel and watch the jobs of a running plinth serve.",
    description: "Each command finds the server through DIR/serve/server.json and sends the token in DIR/serve/token: use the --data-dir the server was started with.",
    examples: [
      { command: `plinth jobs submit greeter greet --input '{"name": "Ada"}'`, what: "Queue a job; prints its id." },
      { command: "plinth jobs watch job-01hx", what: "Follow it until it ends." },
    ],
  },
  "plinth jobs submit": {
    summary: "Queue a job on the running plinth serve and print its id.",
    args: {
      instance: { description: "The instance to run the job on: a plugin id names its default instance.", example: "greeter" },
      action: { description: "The action to call, as the manifest declares it.", example: "greet" },
    },
    options: {
      "--input": { placeholder: "JSON", description: "The action's input as JSON (default null). Not JSON: exit 5.", example: `--input '{"name": "Ada"}'` },
      "--priority": { placeholder: "N", description: "Higher runs first; equal priorities run in the order submitted (default 0).", example: "--priority 10" },
      "--timeout": { placeholder: "DURATION", description: "Each attempt's deadline, e.g. 500ms, 5s, 2m.", example: "--timeout 30s" },
      "--idempotency-key": {
        placeholder: "KEY",
        description: "Says a re-run is safe: a job running when its host died runs again after a restart. A key already known returns the first job's id.",
        example: "--idempotency-key invoice-42",
      },
      "--data-dir": dataDir,
      "--json": json(),
    },
    examples: [{ command: `plinth jobs submit greeter greet --input '{"name": "Ada"}' --priority 5`, what: "Queue a job ahead of priority-0 ones." }],
    exitCodes: [ExitCode.Ok, ExitCode.Failure, ExitCode.Usage, ExitCode.Input],
  },
  "plinth jobs list": {
    summary: "List the running plinth serve's jobs: running, pending in the order they will run, then finished, newest first.",
    options: { "--data-dir": dataDir, "--json": json() },
    examples: [{ command: "plinth jobs list", what: "The queue's counts, then one line per job." }],
    exitCodes: [ExitCode.Ok, ExitCode.Failure],
  },
  "plinth jobs show": {
    summary: "Show one job of the running plinth serve: its state, result or error, and its log.",
    args: { id: { description: "The job's id, as submit printed it.", example: "job-01hx" } },
    options: { "--data-dir": dataDir, "--json": json() },
    examples: [{ command: "plinth jobs show job-01hx --json", what: "The job and its log lines, for a program." }],
    exitCodes: [ExitCode.Ok, ExitCode.Failure, ExitCode.Usage],
  },
  "plinth jobs cancel": {
    summary: "Cancel a pending or running job of the running plinth serve.",
    description: "A pending job is cancelled at once; a running one is interrupted, and its worker killed and restarted if it does not stop in time.",
    args: { id: { description: "The job's id.", example: "job-01hx" } },
    options: { "--data-dir": dataDir, "--json": json() },
    examples: [{ command: "plinth jobs cancel job-01hx", what: "Cancel it; says so when it had already ended." }],
    exitCodes: [ExitCode.Ok, ExitCode.Failure, ExitCode.Usage],
  },
  "plinth jobs watch": {
    summary: "Print a job's events until it ends, then the job; exit with its outcome.",
    description:
      "Events go to stderr as they happen (with --json: one {\"event\": …} line each on stdout), the finished job to stdout. " +
      "Exit 0 when it completed, its failure's code (5, 6, 7, 8) when it failed, 130 when it was cancelled.",
    args: { id: { description: "The job's id.", example: "job-01hx" } },
    options: { "--data-dir": dataDir, "--json": json("one JSON line per event, then the outcome, on stdout") },
    examples: [{ command: "plinth jobs watch job-01hx", what: "Follow the job to its end." }],
    exitCodes: [ExitCode.Ok, ExitCode.Failure, ExitCode.Usage, ExitCode.Input, ExitCode.Transient, ExitCode.Resource, ExitCode.Fatal],
  },
}
