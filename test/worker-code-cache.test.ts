import { afterAll, describe, expect, it } from "@effect/vitest"
import { readdirSync, rmSync } from "node:fs"
import { dirname } from "node:path"
import { Effect } from "effect"
import { startInstance, workerBundled, workerEntryPath } from "@plinth/runtime"
import { tempDir } from "./support/plugins.js"
import { hostilePlugin, IsolationTestLive, tiers } from "./hostile/support/isolation.js"

const root = tempDir("plinth-code-cache-")
afterAll(() => rmSync(root, { recursive: true, force: true }))

/*
 * Inside a real worker, after start-up, V8 accepts the runtime's code cache
 * (made under the default V8 flags) whatever the worker's heap cap: the
 * worker put the flags back to the defaults before compiling anything, so
 * Node's caches of its own modules are accepted too (process/DefaultV8Flags.ts).
 */
// Under another name: the runtime compiled under its own name is in V8's in-memory compilation
// cache, which would answer without looking at the cache data at all.
const actions = `
  probe: action({ description: "", input: Schema.Struct({ script: Schema.String, cache: Schema.String }), output: Schema.String, handler: ({ script, cache }) => Effect.sync(() =>
    new vm.Script(readFileSync(script, "utf8"), { filename: "probe.cjs", cachedData: readFileSync(cache) }).cachedDataRejected ? "rejected" : "accepted") }),
`
const prelude = `import vm from "node:vm"\nimport { readFileSync } from "node:fs"`

describe.each(tiers)("isolation tier %s: the worker runtime's code cache", (tier) => {
  it.scopedLive.each<{ readonly cap: string; readonly memoryMiB: number | undefined }>([
    { cap: "the default heap cap", memoryMiB: undefined },
    { cap: "a 64 MiB heap cap", memoryMiB: 64 },
    { cap: "a 2048 MiB heap cap", memoryMiB: 2048 },
  ])("is accepted inside a worker with $cap", ({ memoryMiB }) =>
    Effect.gen(function* () {
      expect(workerBundled()).toBe(true)
      const dir = dirname(workerEntryPath())
      const cache = readdirSync(dir).find((name) => name.endsWith(".cache"))!
      const id = `cache-${tier}-${memoryMiB ?? "default"}`
      const { plugin, locked } = yield* hostilePlugin(root, id, { actions, prelude, ...(memoryMiB !== undefined ? { manifest: { resources: { memoryMiB } } } : {}) })
      const instance = yield* startInstance({ plugin, locked, drift: "ignore", isolation: tier })
      expect(yield* instance.invoke("probe", { script: `${dir}/WorkerRuntime.cjs`, cache: `${dir}/${cache}` })).toBe("accepted")
    }).pipe(Effect.provide(IsolationTestLive)),
  )
})
