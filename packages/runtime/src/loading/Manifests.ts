import { statSync, type Stats } from "node:fs"
import * as Path from "@effect/platform/Path"
import { Effect, Either, Option } from "effect"
import { decodeManifest, manifestCaps, MissingManifest, SchemaViolation, type PluginManifest } from "@plinth/domain"
import { readRegularFileText } from "./RegularFile.js"

export const MANIFEST_FILE = "plugin.json"

/**
 * Synchronous, as the walk is (PluginFiles.ts): a stat is microseconds, and
 * an asynchronous one would start libuv's thread pool just for it (ADR 0018).
 */
const statOf = (path: string): Effect.Effect<Stats, unknown> =>
  Effect.try({ try: () => statSync(path), catch: (error) => error })

/**
 * Reads and decodes `<dir>/plugin.json` and checks it against its folder:
 * the id must equal the folder name and the entry must be a file in the folder.
 */
export const readManifest = (dir: string, folderName: string) => Effect.map(readManifestFile(dir, folderName), (read) => read.manifest)

/** As `readManifest`, with the text it decoded (read once: what is copied is what was checked). */
export const readManifestFile = (dir: string, folderName: string) =>
  Effect.gen(function* () {
    const path = yield* Path.Path
    const violation = (detail: string) => new SchemaViolation({ plugin: folderName, detail })
    const file = path.join(dir, MANIFEST_FILE)
    const info = yield* Effect.mapError(statOf(file), () => new MissingManifest({ plugin: folderName }))
    if (!info.isFile()) return yield* violation(`${MANIFEST_FILE} is not a regular file`)
    const text = yield* readRegularFileText(file, manifestCaps.maxChars).pipe(Effect.mapError((e) => violation(`${MANIFEST_FILE} ${e.detail}`)))
    // One problem per line, each naming the file: `plugin.json: version: expected …, got "0.1"`.
    const inFile = (detail: string) => detail.split("\n").map((line) => `${MANIFEST_FILE}: ${line}`).join("\n")
    const manifest: PluginManifest = yield* Either.mapLeft(decodeManifest(text), (detail) => violation(inFile(detail)))
    if (manifest.id !== folderName) return yield* violation(`${MANIFEST_FILE}: id: expected the folder name ${JSON.stringify(folderName)}, got ${JSON.stringify(manifest.id)}`)
    const entryInfo = yield* Effect.option(statOf(path.join(dir, manifest.entry)))
    if (Option.isNone(entryInfo) || !entryInfo.value.isFile()) {
      return yield* violation(`${MANIFEST_FILE}: entry: expected a file in the plugin folder, got ${JSON.stringify(manifest.entry)} (no such file)`)
    }
    return { manifest, text }
  })
