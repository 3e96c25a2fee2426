import { ValidationError, HelpDoc } from "@effect/cli"
import { Exit, FiberId } from "effect"
import { describe, expect, it } from "vitest"
import {
  categoryOf,
  ConfigInvalid,
  IntegrityMismatch,
  PluginDisabled,
  PluginFailure,
  WorkerExited,
  WorkerKilled,
  WorkerOutOfMemory,
  LockFileMalformed,
  MissingManifest,
  MissingPluginDirectory,
  PluginImportError,
  SchemaViolation,
  SymlinkEscape,
  UnlockedPlugin,
  type Digest,
} from "@plinth/domain"
import { LockWriteFailed, PluginNotFound, StoreSchemaMismatch, StoreUnavailable, TraceUnavailable } from "@plinth/runtime"
import {
  classifyOperationFailure,
  ClusterJoinRefused,
  ExitCode,
  exitCodeForCategory,
  exitCodeForExit,
  exitCodeForFailure,
  exitCodeForPluginFailure,
  InvalidJsonOption,
  LockOutOfDate,
  ManifestWriteFailed,
  PluginCallFailed,
  UnclassifiedFailure,
  UsageError,
} from "@plinth/cli"
import { everyPluginFailure } from "./support-failures.js"

const digest = `h1:${"A".repeat(43)}=` as Digest

describe("exit codes", () => {
  it("every plugin rejection exits 4", () => {
    const rejections = [
      new IntegrityMismatch({ plugin: "a", expected: digest, actual: digest, added: [], removed: [], changed: ["x.js"] }),
      new MissingManifest({ plugin: "a" }),
      new SchemaViolation({ plugin: "a", detail: "bad" }),
      new UnlockedPlugin({ plugin: "a" }),
      new MissingPluginDirectory({ plugin: "a" }),
      new PluginImportError({ plugin: "a", detail: "boom" }),
      new SymlinkEscape({ plugin: "a", offendingPath: "link" }),
      new LockFileMalformed({ path: "PLUGINS.lock", detail: "not JSON" }),
    ]
    expect(rejections.map(exitCodeForFailure)).toEqual(rejections.map(() => 4))
  })

  it("a cluster runner whose plugins differ from the cluster's is rejected as its code: exit 4", () => {
    const refused = new ClusterJoinRefused({ message: "differ", clusterDigest: "sha256:a", runnerDigest: "sha256:b", runners: ["10.0.0.5:7718"] })
    expect(exitCodeForFailure(refused)).toBe(ExitCode.Rejected)
  })

  it("usage errors exit 2, an out-of-date lock 3, an unwritable lock 1", () => {
    const doc = HelpDoc.p("bad")
    for (const error of [
      ValidationError.commandMismatch(doc),
      ValidationError.invalidArgument(doc),
      ValidationError.invalidValue(doc),
      ValidationError.missingValue(doc),
      ValidationError.missingFlag(doc),
      ValidationError.missingSubcommand(doc),
      ValidationError.correctedFlag(doc),
      ValidationError.noBuiltInMatch(doc),
      new UsageError({ message: "needs a command", command: "plinth" }),
    ]) {
      expect(exitCodeForFailure(error)).toBe(ExitCode.Usage)
    }
    expect(exitCodeForFailure(new LockOutOfDate({ lock: "PLUGINS.lock" }))).toBe(3)
    expect(exitCodeForFailure(new LockWriteFailed({ path: "PLUGINS.lock", detail: "EACCES" }))).toBe(1)
  })

  it("a refused config and a disabled plugin exit 5 (input); a database that cannot be used exits 1", () => {
    expect(exitCodeForFailure(new ConfigInvalid({ plugin: "greeter", fieldsInvalid: ["x"], detail: "unknown key 'x'" }))).toBe(ExitCode.Input)
    expect(exitCodeForFailure(new PluginDisabled({ plugin: "greeter", instance: "greeter" }))).toBe(ExitCode.Input)
    expect(exitCodeForFailure(new StoreUnavailable({ path: "p", reason: "r" }))).toBe(ExitCode.Failure)
    expect(exitCodeForFailure(new StoreSchemaMismatch({ path: "p", expected: 1, found: 0, detail: "d" }))).toBe(ExitCode.Failure)
  })

  it("the process exits with the program's code, 130 when interrupted, 1 on a defect", () => {
    expect(exitCodeForExit(Exit.succeed(4))).toBe(4)
    expect(exitCodeForExit(Exit.succeed(0))).toBe(0)
    expect(exitCodeForExit(Exit.succeed("not a code"))).toBe(1)
    expect(exitCodeForExit(Exit.interrupt(FiberId.none))).toBe(130)
    expect(exitCodeForExit(Exit.die(new Error("bug")))).toBe(1)
  })
})

describe("exit codes of plugin operations", () => {
  const context = { plugin: "showcase", instance: "showcase#1", time: new Date(0) }
  const expected = { input: 5, transient: 6, resource: 7, fatal: 8 } as const

  it("covers every variant of the taxonomy", () => {
    expect(new Set(everyPluginFailure.map(([failure]) => failure._tag))).toEqual(new Set(PluginFailure.members.map((m) => m._tag)))
  })

  for (const [failure, category] of everyPluginFailure) {
    it(`${failure._tag} exits ${expected[category]} (${category})`, () => {
      expect(categoryOf(failure)).toBe(category)
      expect(exitCodeForPluginFailure(failure)).toBe(expected[category])
      expect(exitCodeForCategory[categoryOf(failure)]).toBe(exitCodeForPluginFailure(failure))
      const classified = classifyOperationFailure(context)(failure)
      expect(classified).toBeInstanceOf(PluginCallFailed)
      expect(exitCodeForFailure(classified)).toBe(expected[category])
      expect(classified._tag === "PluginCallFailed" && classified.job).toMatchObject({ category, tag: failure._tag, ...context })
    })
  }

  it("a worker killed by SIGKILL or out of heap is a resource error (exit 7), any other unexpected exit transient", () => {
    expect(exitCodeForPluginFailure(new WorkerKilled({ plugin: "p", exitCode: null, signal: "SIGKILL" }))).toBe(ExitCode.Resource)
    expect(exitCodeForPluginFailure(new WorkerOutOfMemory({ plugin: "p", exitCode: 134, signal: null }))).toBe(ExitCode.Resource)
    expect(ExitCode.Resource).toBe(7)
    expect(exitCodeForPluginFailure(new WorkerExited({ plugin: "p", exitCode: null, signal: "SIGTERM", detail: "" }))).toBe(ExitCode.Transient)
  })

  it("JSON that --input or --config cannot parse exits 5", () => {
    expect(exitCodeForFailure(new InvalidJsonOption({ option: "--input", detail: "Unexpected token" }))).toBe(ExitCode.Input)
    expect(exitCodeForFailure(new InvalidJsonOption({ option: "--config", detail: "Unexpected token" }))).toBe(ExitCode.Input)
  })

  it("anything outside the taxonomy, a defect included, is fatal and exits 8", () => {
    const classified = classifyOperationFailure(context)(new Error("bug in the host"))
    expect(classified).toBeInstanceOf(UnclassifiedFailure)
    expect(classified._tag === "UnclassifiedFailure" && classified.job).toMatchObject({ category: "fatal", retriable: false, message: "Error: bug in the host" })
    expect(exitCodeForFailure(classified)).toBe(ExitCode.Fatal)
  })

  it("an id that is not under the root is a usage error (2); rejections during an operation stay 4", () => {
    const notFound = new PluginNotFound({ plugin: "nope", known: ["showcase"] })
    expect(classifyOperationFailure(context)(notFound)).toBe(notFound)
    expect(exitCodeForFailure(notFound)).toBe(ExitCode.Usage)
    const rejection = new UnlockedPlugin({ plugin: "showcase" })
    expect(classifyOperationFailure(context)(rejection)).toBe(rejection)
    expect(exitCodeForFailure(rejection)).toBe(ExitCode.Rejected)
  })

  it("an unreadable trace or unwritable plugin.json exits 1", () => {
    expect(exitCodeForFailure(new TraceUnavailable({ path: ".plinth/trace.jsonl", detail: "EACCES" }))).toBe(ExitCode.Failure)
    expect(exitCodeForFailure(new ManifestWriteFailed({ plugin: "showcase", detail: "EACCES" }))).toBe(ExitCode.Failure)
  })

  it("each category has its own code, distinct from every other exit code", () => {
    const codes = Object.values(exitCodeForCategory)
    expect(new Set(codes).size).toBe(4)
    for (const code of codes) expect([ExitCode.Ok, ExitCode.Failure, ExitCode.Usage, ExitCode.LockOutOfDate, ExitCode.Rejected, ExitCode.Interrupted]).not.toContain(code)
  })
})
