// The demo host: verifies and loads the example plugins through the public API,
// then shows what a user sees when one byte of a plugin changes after review.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, relative } from "node:path"
import { Effect, Either } from "effect"
import { explainRejection, exitCodeFor } from "@plinth/domain"
import { loadPlugins, PlinthLive, Registry } from "@plinth/runtime"

const here = import.meta.dirname
const root = join(here, "plugins")
const lock = join(here, "..", "PLUGINS.lock")

const heading = (text) => console.log(`\n== ${text}`)

heading(`Verifying and loading ${relative(process.cwd(), root) || "."} against PLUGINS.lock`)
const report = await Effect.runPromise(
  Effect.gen(function* () {
    const loaded = yield* loadPlugins({ root, lock })
    const registered = yield* Effect.flatMap(Registry, (r) => r.list)
    return { loaded, registered }
  }).pipe(Effect.provide(PlinthLive)),
)
console.log(`loaded ${report.loaded.loaded.length} of ${report.loaded.totalWalked} plugin folders:`)
for (const plugin of report.registered) {
  const exports = Object.keys(plugin.module.default ?? {}).join(", ")
  console.log(`  ${plugin.id}@${plugin.manifest.version}  ${plugin.digest}  exports: ${exports}`)
}

heading("Tampering: one byte changed in a copy of text-tools")
const scratch = mkdtempSync(join(tmpdir(), "plinth-demo-"))
try {
  cpSync(root, join(scratch, "plugins"), { recursive: true })
  const victim = join(scratch, "plugins", "text-tools", "lib", "words.mjs")
  const bytes = readFileSync(victim)
  bytes[bytes.length - 2] ^= 0x01
  writeFileSync(victim, bytes)
  const outcome = await Effect.runPromise(
    loadPlugins({ root: join(scratch, "plugins"), lock }).pipe(Effect.either, Effect.provide(PlinthLive)),
  )
  if (Either.isRight(outcome)) throw new Error("the tampered copy was accepted; this must never happen")
  const rejection = outcome.left
  console.log(`rejected (${rejection._tag}, exit code ${exitCodeFor(rejection)}); nothing was imported:`)
  console.log(explainRejection(rejection))
} finally {
  rmSync(scratch, { recursive: true, force: true })
}
