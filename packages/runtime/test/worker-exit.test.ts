import { describe, expect, it } from "vitest"
import { categoryOf } from "@plinth/domain"
import { workerExitFailure } from "../src/instance/WorkerExit.js"

const heapDeath = "<--- Last few GCs --->\nFATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\n"

describe("what an unexpected worker exit means", () => {
  it("heap exhaustion is WorkerOutOfMemory (resource), as Node reports it (SIGABRT) and as bwrap does (exit 134)", () => {
    for (const exit of [{ exitCode: null, signal: "SIGABRT" }, { exitCode: 134, signal: null }]) {
      const failure = workerExitFailure({ plugin: "p", exit, killedByHost: undefined, stderrTail: heapDeath })
      expect(failure).toMatchObject({ _tag: "WorkerOutOfMemory", plugin: "p", ...exit })
      expect(categoryOf(failure)).toBe("resource")
    }
  })

  it("SIGKILL (or 137 through bwrap) is WorkerKilled (resource); an abort without V8's words is an ordinary exit (transient)", () => {
    for (const exit of [{ exitCode: null, signal: "SIGKILL" }, { exitCode: 137, signal: null }]) {
      expect(workerExitFailure({ plugin: "p", exit, killedByHost: undefined, stderrTail: "" })).toMatchObject({ _tag: "WorkerKilled" })
    }
    const aborted = workerExitFailure({ plugin: "p", exit: { exitCode: null, signal: "SIGABRT" }, killedByHost: undefined, stderrTail: "assertion failed" })
    expect(aborted).toMatchObject({ _tag: "WorkerExited" })
    expect(categoryOf(aborted)).toBe("transient")
  })

  it("a kill the host decided itself keeps its reason", () => {
    const failure = workerExitFailure({ plugin: "p", exit: { exitCode: null, signal: "SIGKILL" }, killedByHost: "timed out", stderrTail: heapDeath })
    expect(failure).toMatchObject({ _tag: "WorkerExited", detail: "timed out" })
  })
})
