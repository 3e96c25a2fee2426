#!/usr/bin/env node
"use strict"
/*
 * The `plinth` command. A committed launcher rather than a compiled file, so
 * that npm can link it at install time, before `prepare` has compiled dist/.
 * CommonJS (bin/package.json): an ES module entry would first compile Node's
 * ES module loader.
 *
 * It runs the bundled CLI (dist/bundle/, made by scripts/bundle-cli.mjs) from a
 * V8 code cache when the bundle is current, and the compiled, unbundled
 * dist/bin.js otherwise (see ADRs/0018-cli-start-up-and-packages.md).
 */
const { accessSync, constants, existsSync, readFileSync, renameSync, unlinkSync, writeFileSync } = require("node:fs")
const { join } = require("node:path")

const packageDir = join(__dirname, "..")
const bundleDir = join(packageDir, "dist", "bundle")
const args = process.argv.slice(2)

// The version needs none of the CLI: one line, straight from package.json.
if (args.length === 1 && args[0] === "--version") {
  process.stdout.write(`${JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8")).version}\n`)
  return
}

const readRecord = () => {
  try {
    return JSON.parse(readFileSync(join(bundleDir, "build.json"), "utf8"))
  } catch {
    return undefined
  }
}

/*
 * In a source checkout (src/ is not in the published package) dist/ may have
 * been recompiled since the bundle was made: the bundle runs only if the
 * compiler's state is the one it was built from. `tsc -b` rewrites a
 * package's tsconfig.tsbuildinfo whenever it emits, so three reads stand for
 * the hundred compiled files. An installed package is never rebuilt, so it
 * skips the check.
 */
const compiledSinceBundled = (record) => {
  const { createHash } = require("node:crypto")
  const repo = join(packageDir, "..", "..")
  try {
    const states = Object.entries(record.compilerState ?? {})
    if (states.length === 0) return true
    for (const [file, sha256] of states) if (createHash("sha256").update(readFileSync(join(repo, file))).digest("hex") !== sha256) return true
    return false
  } catch {
    return true
  }
}

/*
 * `plinth serve --cluster` runs from a second bundle holding @plinth/cluster as
 * well (Postgres, @effect/cluster): in the one every command loads it would
 * cost each start ~5 ms (scripts/bundle-cli.mjs).
 */
const wantsCluster = args.includes("--cluster")

const runBundle = (record) => {
  const vm = require("node:vm")
  const { createRequire } = require("node:module")
  const [bundle, bundleHash] = wantsCluster && record.clusterBundle !== undefined ? [record.clusterBundle, record.clusterBundleHash] : [record.bundle, record.bundleHash]
  const filename = join(bundleDir, bundle)
  // Named by the bundle's content and by V8's version and architecture: V8 itself checks only the source length.
  const cacheFile = join(bundleDir, `plinth.${bundleHash}.${process.versions.v8}-${process.arch}.cache`)
  let cachedData
  try {
    cachedData = readFileSync(cacheFile)
  } catch {
    // None for this Node yet: compile from source, and leave a cache for the next run if the folder is writable.
  }
  const script = new vm.Script(readFileSync(filename, "utf8"), { filename, ...(cachedData !== undefined ? { cachedData } : {}) })
  if (cachedData === undefined && writable(bundleDir)) process.once("exit", () => writeCache(script, cacheFile))
  const module = { exports: {} }
  script.runInThisContext()(module.exports, createRequire(filename), module, filename, bundleDir)
}

const writable = (dir) => {
  try {
    accessSync(dir, constants.W_OK)
    return true
  } catch {
    return false
  }
}

// At exit, so that the cache holds what this run compiled; renamed into place, so no run reads half a file.
const writeCache = (script, cacheFile) => {
  const temporary = `${cacheFile}.${process.pid}.tmp`
  try {
    writeFileSync(temporary, script.createCachedData())
    renameSync(temporary, cacheFile)
  } catch {
    try {
      unlinkSync(temporary)
    } catch {}
  }
}

const record = readRecord()
if (record !== undefined && (!existsSync(join(packageDir, "src")) || !compiledSinceBundled(record))) runBundle(record)
else import("../dist/bin.js")
