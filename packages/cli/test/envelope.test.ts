import { describe, expect, it } from "vitest"
import {
  ConfigInvalid,
  IntegrityMismatch,
  LockFileMalformed,
  MissingManifest,
  MissingPluginDirectory,
  PluginDisabled,
  PluginId,
  PluginImportError,
  SchemaViolation,
  SymlinkEscape,
  toJobError,
  UnlockedPlugin,
  type Digest,
} from "@plinth/domain"
import { LockWriteFailed, PluginNotFound, StoreSchemaMismatch, StoreUnavailable, TraceUnavailable } from "@plinth/runtime"
import {
  classifyOperationFailure,
  failureJson,
  InvalidJsonOption,
  LockOutOfDate,
  ManifestWriteFailed,
  oneLineMessage,
  PluginCallFailed,
  UnclassifiedFailure,
  UsageError,
  type HandlerFailure,
} from "@plinth/cli"
import { everyPluginFailure } from "./support-failures.js"

const digest = `h1:${"A".repeat(43)}=` as Digest
const context = { plugin: "showcase", instance: "showcase#1", time: new Date(0) }

/** One failure of every kind a command reports. */
const everyFailure: ReadonlyArray<HandlerFailure> = [
  new IntegrityMismatch({ plugin: "a", expected: digest, actual: digest, added: ["n.js"], removed: [], changed: ["x.js"] }),
  new MissingManifest({ plugin: "a" }),
  new SchemaViolation({ plugin: "a", detail: "version: expected a semantic version\nentry: missing" }),
  new UnlockedPlugin({ plugin: "a" }),
  new MissingPluginDirectory({ plugin: "a" }),
  new PluginImportError({ plugin: "a", detail: "boom" }),
  new SymlinkEscape({ plugin: "a", offendingPath: "link" }),
  new LockFileMalformed({ path: "PLUGINS.lock", detail: "not JSON" }),
  new PluginNotFound({ plugin: "nope", known: ["a"] }),
  ...everyPluginFailure.map(([failure]) => new PluginCallFailed({ failure, job: toJobError(failure, context) })),
  classifyOperationFailure(context)(new Error("a bug")) as UnclassifiedFailure,
  new InvalidJsonOption({ option: "--input-file", detail: "in.json is not valid JSON: line 1, column 2" }),
  new LockWriteFailed({ path: "PLUGINS.lock", detail: "read-only file system" }),
  new ManifestWriteFailed({ plugin: "a", detail: "read-only file system" }),
  new TraceUnavailable({ path: "t.jsonl", detail: "EISDIR" }),
  new LockOutOfDate({ lock: "PLUGINS.lock", changes: { added: [], removed: [PluginId.make("a")], changed: [] } }),
  new UsageError({ message: "'plinth plugins' needs a command: verify", command: "plinth plugins" }),
  new StoreUnavailable({ path: ".plinth/plinth.db", reason: "EACCES: permission denied" }),
  new StoreSchemaMismatch({ path: ".plinth/plinth.db", expected: 1, found: 2, detail: "newer" }),
  new ConfigInvalid({ plugin: "greeter", fieldsInvalid: ["shout"], detail: "unknown key 'shout'" }),
  new PluginDisabled({ plugin: "greeter", instance: "greeter", reason: "by 'plinth plugins disable'" }),
]

describe("the failure envelope", () => {
  it("is {ok: false, error: {_tag first, …fields, message on one line}} for every failure", () => {
    for (const failure of everyFailure) {
      const json = failureJson(failure)
      expect(json.ok).toBe(false)
      expect(Object.keys(json.error)[0]).toBe("_tag")
      expect(json.error.message, failure._tag).toMatch(/^\S.*\S$/)
      expect(json.error.message).not.toContain("\n")
      // What a program reads survives a round trip through JSON.
      expect(JSON.parse(JSON.stringify(json))).toEqual(json)
    }
  })

  it("names the variant in _tag: a rejection's or a plugin failure's own, not a wrapper's", () => {
    expect(everyFailure.map((f) => failureJson(f).error._tag)).toEqual(
      everyFailure.map((f) => (f._tag === "PluginCallFailed" ? f.failure._tag : f._tag === "UnclassifiedFailure" ? f.job.tag : f._tag)),
    )
  })

  it("keeps a plugin's own message, and its job summary beside the error", () => {
    const [failure] = everyPluginFailure[2]!
    const json = failureJson(new PluginCallFailed({ failure, job: toJobError(failure, context) }))
    expect(json.error).toMatchObject({ _tag: "PluginTransientError", retryAfterSeconds: 5, message: "the service is busy" })
    expect(json.job).toMatchObject({ category: "transient", retriable: true, instance: "showcase#1" })
  })

  it("a rejection's message is the human one on one line, and `rejection` is the same object", () => {
    const json = failureJson(everyFailure[0]!)
    expect(json.error.message).toMatch(/^plugin 'a' does not match .*; changed: x\.js$/)
    expect(json.error.message).not.toMatch(/^rejected/)
    expect(json.rejection).toEqual(json.error)
  })

  it("joins a message's lines, keeping a heading with what follows it", () => {
    expect(oneLineMessage("usage error: bad\nrun 'plinth --help' for usage")).toBe("bad; run 'plinth --help' for usage")
    expect(oneLineMessage("failed [X]: it broke\n  worker stderr:\n    line 1\n    line 2")).toBe("it broke; worker stderr: line 1; line 2")
  })
})
