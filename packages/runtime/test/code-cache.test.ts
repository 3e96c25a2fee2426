import { execFileSync } from "node:child_process"
import { readdirSync } from "node:fs"
import { dirname, join } from "node:path"
import { describe, expect, it } from "vitest"
import { sandboxFor, workerBundled, workerEntryPath } from "../src/instance/Sandbox.js"
import { runtimeScriptFile } from "../src/process/RuntimeScript.js"

/*
 * V8 refuses a code cache made under other flags, and then silently compiles
 * the whole runtime again (slower starts, more memory). A worker of a plugin
 * with the default heap cap must start from the cache `npm run build` made.
 */
const acceptedUnder = (execArgv: ReadonlyArray<string>, dir: string, cache: string) => {
  const probe = `
    const vm = require("node:vm"), fs = require("node:fs"), path = require("node:path")
    const file = path.join(${JSON.stringify(dir)}, ${JSON.stringify(runtimeScriptFile)})
    const script = new vm.Script(fs.readFileSync(file, "utf8"), { filename: file, cachedData: fs.readFileSync(path.join(${JSON.stringify(dir)}, ${JSON.stringify(cache)})) })
    process.stdout.write(script.cachedDataRejected ? "rejected" : "accepted")`
  return execFileSync(process.execPath, [...execArgv, "-e", probe], { encoding: "utf8", env: {} })
}

describe("the worker runtime's code cache", () => {
  it("is accepted under the flags of a worker with the default heap cap, and refused under another cap", () => {
    // `npm test` bundles the runtime first.
    expect(workerBundled).toBe(true)
    const dir = dirname(workerEntryPath)
    const cache = readdirSync(dir).find((name) => name.endsWith(".cache"))
    expect(cache).toBeDefined()
    const defaults = sandboxFor({ permissions: undefined, dataDir: undefined, hostEnv: {} }).execArgv
    expect(acceptedUnder(defaults, dir, cache!)).toBe("accepted")
    const bigger = sandboxFor({ permissions: undefined, resources: { memoryMiB: 2048 }, dataDir: undefined, hostEnv: {} }).execArgv
    // Not a promise, a fact worth knowing: such a worker compiles the runtime without the cache.
    expect(acceptedUnder(bigger, dir, cache!)).toBe("rejected")
  })
})
