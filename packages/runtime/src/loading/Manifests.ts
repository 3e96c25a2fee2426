import { FileSystem, Path } from "@effect/platform"
import { Effect, Either } from "effect"
import { decodeManifest, manifestCaps, MissingManifest, SchemaViolation, type PluginManifest } from "@plinth/domain"
import { readRegularFileText } from "./RegularFile.js"

export const MANIFEST_FILE = "plugin.json"

/**
 * Reads and decodes `<dir>/plugin.json` and checks it against its folder:
 * the id must equal the folder name and the entry must be a file in the folder.
 */
export const readManifest = (dir: string, folderName: string) => Effect.map(readManifestFile(dir, folderName), (read) => read.manifest)

/** As `readManifest`, with the text it decoded (read once: what is copied is what was checked). */
export const readManifestFile = (dir: string, folderName: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const violation = (detail: string) => new SchemaViolation({ plugin: folderName, detail })
    const file = path.join(dir, MANIFEST_FILE)
    const info = yield* fs.stat(file).pipe(Effect.catchAll(() => Effect.fail(new MissingManifest({ plugin: folderName }))))
    if (info.type !== "File") return yield* violation(`${MANIFEST_FILE} is not a regular file`)
    const text = yield* readRegularFileText(file, manifestCaps.maxChars).pipe(Effect.mapError((e) => violation(`${MANIFEST_FILE} ${e.detail}`)))
    // One problem per line, each naming the file: `plugin.json: version: expected …, got "0.1"`.
    const inFile = (detail: string) => detail.split("\n").map((line) => `${MANIFEST_FILE}: ${line}`).join("\n")
    const manifest: PluginManifest = yield* Either.mapLeft(decodeManifest(text), (detail) => violation(inFile(detail)))
    if (manifest.id !== folderName) return yield* violation(`${MANIFEST_FILE}: id: expected the folder name ${JSON.stringify(folderName)}, got ${JSON.stringify(manifest.id)}`)
    const entryInfo = yield* fs.stat(path.join(dir, manifest.entry)).pipe(Effect.option)
    if (entryInfo._tag === "None" || entryInfo.value.type !== "File") {
      return yield* violation(`${MANIFEST_FILE}: entry: expected a file in the plugin folder, got ${JSON.stringify(manifest.entry)} (no such file)`)
    }
    return { manifest, text }
  })
