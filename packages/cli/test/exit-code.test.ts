import { ValidationError, HelpDoc } from "@effect/cli"
import { Exit, FiberId } from "effect"
import { describe, expect, it } from "vitest"
import {
  IntegrityMismatch,
  LockFileMalformed,
  MissingManifest,
  MissingPluginDirectory,
  PluginImportError,
  SchemaViolation,
  SymlinkEscape,
  UnlockedPlugin,
  type Digest,
} from "@plinth/domain"
import { LockWriteFailed } from "@plinth/runtime"
import { ExitCode, exitCodeForExit, exitCodeForFailure, LockOutOfDate, UsageError } from "@plinth/cli"

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

  it("the process exits with the program's code, 130 when interrupted, 1 on a defect", () => {
    expect(exitCodeForExit(Exit.succeed(4))).toBe(4)
    expect(exitCodeForExit(Exit.succeed(0))).toBe(0)
    expect(exitCodeForExit(Exit.succeed("not a code"))).toBe(1)
    expect(exitCodeForExit(Exit.interrupt(FiberId.none))).toBe(130)
    expect(exitCodeForExit(Exit.die(new Error("bug")))).toBe(1)
  })
})
