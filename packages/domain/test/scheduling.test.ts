import { describe, expect, it } from "vitest"
import { Schema } from "effect"
import {
  AdmissionRefused,
  AdmissionTimeout,
  categoryOf,
  chooseEvictions,
  decideAdmission,
  defaultBudgetMiB,
  expectedMemory,
  memoryShortfallMiB,
  PluginFailure,
  PluginResourceError,
  toJobError,
  type RunningInstance,
} from "@plinth/domain"

const idle = (instance: string, plugin: string, lastUsed: number, costMiB = 256): RunningInstance => ({ instance, plugin, costMiB, lastUsed, inFlight: 0 })
const busy = (instance: string, plugin: string, lastUsed: number, costMiB = 256): RunningInstance => ({ ...idle(instance, plugin, lastUsed, costMiB), inFlight: 1 })

describe("eviction order across three idle instances with known last-use times", () => {
  // Three idle instances of other plugins, last used at 300, 100 and 200.
  const three = [idle("ocr", "ocr", 300), idle("tts", "tts", 100), idle("asr", "asr", 200)]
  const failing = { instance: "llm", plugin: "llm" }

  it("evicts the least recently used first, one at a time when no shortfall is known", () => {
    const order: Array<string> = []
    let running = three
    for (;;) {
      const choice = chooseEvictions({ failing, running, policy: "safety" })
      if (choice.instances.length === 0) break
      expect(choice.instances).toHaveLength(1)
      order.push(...choice.instances)
      running = running.filter((r) => !choice.instances.includes(r.instance))
    }
    expect(order).toEqual(["tts", "asr", "ocr"])
  })

  it("under permissive, exactly one, even when a shortfall is known", () => {
    expect(chooseEvictions({ failing, running: three, shortfallMiB: 700, policy: "permissive" })).toEqual({
      instances: ["tts"],
      freedMiB: 256,
      shortfallCovered: undefined,
    })
  })

  it("with a shortfall, as many as it needs, oldest first", () => {
    expect(chooseEvictions({ failing, running: three, shortfallMiB: 300, policy: "safety" })).toEqual({
      instances: ["tts", "asr"],
      freedMiB: 512,
      shortfallCovered: true,
    })
    expect(chooseEvictions({ failing, running: three, shortfallMiB: 256, policy: "queue" }).instances).toEqual(["tts"])
    expect(chooseEvictions({ failing, running: three, shortfallMiB: 0, policy: "safety" }).instances).toEqual([])
  })

  it("when even all three do not cover the shortfall, all three, and says so", () => {
    expect(chooseEvictions({ failing, running: three, shortfallMiB: 1000, policy: "safety" })).toEqual({
      instances: ["tts", "asr", "ocr"],
      freedMiB: 768,
      shortfallCovered: false,
    })
  })

  it("a small old instance that does not help is kept when a larger one alone covers the shortfall", () => {
    const running = [idle("tiny", "tiny", 10, 16), idle("big", "big", 20, 1024)]
    expect(chooseEvictions({ failing, running, shortfallMiB: 512, policy: "safety" }).instances).toEqual(["big"])
  })

  it("among instances used at the same time, the one with the highest peak first, then by id", () => {
    const tied = [idle("b", "p1", 100, 300), idle("a", "p2", 100, 300), idle("c", "p3", 100, 900)]
    expect(chooseEvictions({ failing, running: tied, policy: "safety" }).instances).toEqual(["c"])
    expect(chooseEvictions({ failing, running: tied.slice(0, 2), policy: "safety" }).instances).toEqual(["a"])
  })
})

describe("the shortfall a plugin reports", () => {
  it("is what it needed beyond what was available, for memory; unknown for another resource or none", () => {
    const reported = (shortfall?: PluginResourceError["shortfall"]) => memoryShortfallMiB(new PluginResourceError({ message: "short", ...(shortfall ? { shortfall } : {}) }).shortfall)
    expect(reported({ resource: "memory_mb", needed: 3000, available: 1000 })).toBe(2000)
    expect(reported({ resource: "gpu_memory_mb", needed: 3000, available: 1000 })).toBeUndefined()
    expect(reported()).toBeUndefined()
  })
})

describe("the failing plugin's own instances are never evicted", () => {
  it("not its idle siblings, even the oldest and largest; not busy instances; another plugin's idle instance instead", () => {
    const running = [
      idle("llm", "llm", 50, 2048),
      idle("llm-a1b2c3", "llm", 1, 4096),
      busy("ocr", "ocr", 2),
      idle("tts", "tts", 90),
    ]
    const choice = chooseEvictions({ failing: { instance: "llm", plugin: "llm" }, running, shortfallMiB: 5000, policy: "safety" })
    expect(choice).toEqual({ instances: ["tts"], freedMiB: 256, shortfallCovered: false })
  })

  it("nothing when only siblings and busy instances run", () => {
    const running = [idle("llm-a1b2c3", "llm", 1), busy("ocr", "ocr", 2)]
    expect(chooseEvictions({ failing: { instance: "llm", plugin: "llm" }, running, policy: "permissive" }).instances).toEqual([])
  })
})

describe("admission", () => {
  const candidate = (mib: number | undefined, instance = "new") => ({
    instance,
    plugin: "newcomer",
    expected: expectedMemory({ declaredMiB: mib }),
  })

  it("safety admits what fits, evicts the least recently used idle instance to make room, and refuses when busy instances hold the memory", () => {
    const running = [busy("ocr", "ocr", 5, 512), idle("tts", "tts", 1, 256), idle("asr", "asr", 3, 256)]
    expect(decideAdmission({ policy: "safety", budgetMiB: 1536, running, candidate: candidate(512) })).toEqual({ _tag: "Admit" })
    expect(decideAdmission({ policy: "safety", budgetMiB: 1024, running, candidate: candidate(256) })).toEqual({
      _tag: "Evict",
      instances: ["tts"],
      freedMiB: 256,
    })
    expect(decideAdmission({ policy: "safety", budgetMiB: 1024, running, candidate: candidate(600) })).toEqual({
      _tag: "Refuse",
      reason: { _tag: "BusyInstancesHoldMemory", expectedMiB: 600, budgetMiB: 1024, inUseMiB: 1024, busyMiB: 512, busy: ["ocr"] },
    })
  })

  it("queue waits where safety refuses, but refuses a candidate larger than the whole budget: waiting cannot help", () => {
    const running = [busy("ocr", "ocr", 5, 900)]
    expect(decideAdmission({ policy: "queue", budgetMiB: 1024, running, candidate: candidate(512) })._tag).toBe("Wait")
    expect(decideAdmission({ policy: "queue", budgetMiB: 1024, running: [], candidate: candidate(2048) })).toEqual({
      _tag: "Refuse",
      reason: { _tag: "LargerThanBudget", expectedMiB: 2048, budgetMiB: 1024 },
    })
  })

  it("permissive admits even what can never fit", () => {
    expect(decideAdmission({ policy: "permissive", budgetMiB: 0, running: [busy("ocr", "ocr", 1, 9000)], candidate: candidate(4096) })).toEqual({
      _tag: "Admit",
    })
  })

  it("an unmeasured, undeclared candidate counts as nothing; a reload does not count the worker it replaces", () => {
    const running = [busy("ocr", "ocr", 5, 1024)]
    expect(decideAdmission({ policy: "safety", budgetMiB: 1024, running, candidate: candidate(undefined) })).toEqual({ _tag: "Admit" })
    expect(decideAdmission({ policy: "safety", budgetMiB: 1024, running, candidate: { ...candidate(1024), instance: "ocr" } })).toEqual({
      _tag: "Admit",
    })
  })

  it("expected memory: the declaration first, then the measured peak, else unknown", () => {
    expect(expectedMemory({ declaredMiB: 512, measuredPeakMiB: 90 })).toEqual({ _tag: "Declared", mib: 512 })
    expect(expectedMemory({ measuredPeakMiB: 90.5 })).toEqual({ _tag: "Measured", mib: 90.5 })
    expect(expectedMemory({})).toEqual({ _tag: "Unknown" })
  })
})

describe("the default memory budget", () => {
  it("is half of the machine's memory, in whole MiB; nothing for a nonsensical total", () => {
    expect(defaultBudgetMiB(16384)).toBe(8192)
    expect(defaultBudgetMiB(3001)).toBe(1500)
    expect(defaultBudgetMiB(0)).toBe(0)
    expect(defaultBudgetMiB(Number.NaN)).toBe(0)
    expect(defaultBudgetMiB(-5)).toBe(0)
  })
})

describe("admission failures in the taxonomy", () => {
  const timeout = new AdmissionTimeout({
    plugin: "llm",
    instance: "llm-0a1b2c",
    timeoutMillis: 300_000,
    reason: { _tag: "BusyInstancesHoldMemory", expectedMiB: 512, budgetMiB: 1024, inUseMiB: 1024, busyMiB: 768, busy: ["asr", "ocr"] },
  })
  const refused = new AdmissionRefused({ plugin: "llm", instance: "llm", reason: { _tag: "LargerThanBudget", expectedMiB: 4096, budgetMiB: 1024 } })

  it("are resource failures, retriable later, that cross a process boundary with their reason intact", () => {
    for (const failure of [timeout, refused]) {
      expect(categoryOf(failure)).toBe("resource")
      const job = toJobError(failure, { plugin: "llm", instance: failure.instance, time: new Date(0) })
      expect(job).toMatchObject({ category: "resource", retriable: true, tag: failure._tag })
      const decoded = Schema.decodeUnknownSync(PluginFailure)(JSON.parse(JSON.stringify(Schema.encodeSync(PluginFailure)(failure))))
      expect(decoded).toEqual(failure)
    }
  })

  it("say in one line which instance, why, and what to do", () => {
    expect(timeout.message).toBe(
      "'llm-0a1b2c' of 'llm' waited 300000 ms to start and still did not fit: it needs 512 MiB and busy instances (asr, ocr) hold 768 MiB of the 1024 MiB budget; retry later, raise the memory budget or the admission timeout",
    )
    expect(refused.message).toBe(
      "'llm' of 'llm' was not started: it needs 4096 MiB, more than the whole memory budget of 1024 MiB; raise the memory budget or lower its resources.memoryMiB",
    )
  })
})
