import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { Effect } from "effect"
import { lockPlugins, PlinthLive } from "@plinth/runtime"

export const tempDir = (prefix = "plinth-test-") => mkdtempSync(join(tmpdir(), prefix))

export const writeFile = (path: string, content: string | Uint8Array) => {
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, content)
}

/** Writes each file (path relative to `dir`), creating folders as needed. */
export const writeFiles = (dir: string, files: Readonly<Record<string, string>>) => {
  for (const [path, content] of Object.entries(files)) writeFile(join(dir, path), content)
}

/** A plugin.json text for `id`, version 1.2.3 and entry index.js, with `extra` fields. */
export const manifestText = (id: string, extra: Readonly<Record<string, unknown>> = {}) =>
  JSON.stringify({ id, version: "1.2.3", description: `The ${id} plugin.`, entry: "index.js", ...extra }, null, 2)

export interface PluginSpec {
  readonly id: string
  readonly files?: Readonly<Record<string, string>>
  readonly manifest?: Readonly<Record<string, unknown>>
  readonly entry?: string
}

/** Writes `<root>/<id>/plugin.json` and the plugin's files; the entry defaults to `index.js`. */
export const writePlugin = (root: string, spec: PluginSpec) => {
  const entry = spec.entry ?? "index.js"
  const manifest = { id: spec.id, version: "1.0.0", description: `the ${spec.id} plugin`, entry, ...spec.manifest }
  writeFile(join(root, spec.id, "plugin.json"), JSON.stringify(manifest, null, 2))
  const files = spec.files ?? { [entry]: "export default {}\n" }
  for (const [path, content] of Object.entries(files)) writeFile(join(root, spec.id, path), content)
}

/** A module body that records, by writing a file, that it ran. */
export const witnessModule = (witnessDir: string, id: string) =>
  `import { writeFileSync } from "node:fs"\n` +
  `writeFileSync(${JSON.stringify(join(witnessDir, id))}, "ran")\n` +
  `export default { id: ${JSON.stringify(id)} }\n`

/** Pins the plugins under root as they are now, as an operator would with `plinth plugins lock`. */
export const lockNow = (root: string, lock: string) =>
  Effect.runPromise(lockPlugins({ root, lock, check: false }).pipe(Effect.provide(PlinthLive)))

/** A fresh plugin root with a lock path beside it. */
export const workspace = () => {
  const dir = tempDir()
  const root = join(dir, "plugins")
  const witnesses = join(dir, "witnesses")
  mkdirSync(root)
  mkdirSync(witnesses)
  return { dir, root, lock: join(dir, "PLUGINS.lock"), witnesses }
}
