import { execFileSync } from "node:child_process"
import { readdirSync } from "node:fs"
import { dirname, join } from "node:path"
import { pathToFileURL } from "node:url"
import { describe, expect, it } from "vitest"
import { sandboxFor, workerBundled, workerEntryPath } from "../src/instance/Sandbox.js"
import { runtimeScriptFile } from "../src/process/RuntimeScript.js"

/*
 * V8 refuses a code cache made under other V8 flags, and then silently
 * compiles the whole runtime again (slower starts, more memory); Node's own
 * caches for its builtin modules likewise. A worker starts with its heap cap
 * (a V8 flag) and puts the flags back to the defaults first thing
 * (process/DefaultV8Flags.ts), so the cache `npm run build` made under the
 * defaults must be accepted whatever the cap.
 */
const defaultV8FlagsFile = join(import.meta.dirname, "..", "dist", "process", "DefaultV8Flags.js")
const defaultV8Flags = pathToFileURL(defaultV8FlagsFile).href

const acceptedUnder = (execArgv: ReadonlyArray<string>, dir: string, cache: string, resetFirst: boolean) => {
  const probe = `
    const vm = require("node:vm"), fs = require("node:fs"), path = require("node:path")
    const check = () => {
      const file = path.join(${JSON.stringify(dir)}, ${JSON.stringify(runtimeScriptFile)})
      const script = new vm.Script(fs.readFileSync(file, "utf8"), { filename: file, cachedData: fs.readFileSync(path.join(${JSON.stringify(dir)}, ${JSON.stringify(cache)})) })
      process.stdout.write(script.cachedDataRejected ? "rejected" : "accepted")
    }
    ${resetFirst ? `import(${JSON.stringify(defaultV8Flags)}).then(check)` : "check()"}`
  const readIt = resetFirst ? [`--allow-fs-read=${defaultV8FlagsFile}`] : []
  return execFileSync(process.execPath, [...execArgv, ...readIt, "-e", probe], { encoding: "utf8", env: {} })
}

describe("the worker runtime's code cache", () => {
  it("is accepted under a worker's flags whatever its heap cap, once the worker has put V8's flags back to the defaults", () => {
    // `npm test` bundles the runtime first.
    expect(workerBundled()).toBe(true)
    const dir = dirname(workerEntryPath())
    const cache = readdirSync(dir).find((name) => name.endsWith(".cache"))
    expect(cache).toBeDefined()
    const defaults = sandboxFor({ permissions: undefined, dataDir: undefined, hostEnv: {} }).execArgv
    const bigger = sandboxFor({ permissions: undefined, resources: { memoryMiB: 2048 }, dataDir: undefined, hostEnv: {} }).execArgv
    expect(acceptedUnder(defaults, dir, cache!, true)).toBe("accepted")
    expect(acceptedUnder(bigger, dir, cache!, true)).toBe("accepted")
    // Why the worker does it: under the cap's flag as given, V8 refuses the cache.
    expect(acceptedUnder(defaults, dir, cache!, false)).toBe("rejected")
  })
})
