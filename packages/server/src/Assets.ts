import { createRequire } from "node:module"
import { readFile } from "node:fs/promises"
import { dirname, join } from "node:path"

/*
 * The dashboard's static files: `assets/` of this package, found through the
 * package's own name, so the same code works unbundled, from the CLI bundle
 * (where `import.meta.url` is the bundle's) and from an installed package.
 * Only the names below are served: nothing derived from a request path ever
 * reaches the file system, so there is no traversal to guard against.
 */

export const assetContentTypes = {
  "index.html": "text/html; charset=utf-8",
  "dashboard.js": "text/javascript; charset=utf-8",
  "dashboard.css": "text/css; charset=utf-8",
} as const

export type AssetName = keyof typeof assetContentTypes

export const isAssetName = (name: string): name is AssetName => Object.prototype.hasOwnProperty.call(assetContentTypes, name)

let assetsDir: string | undefined

/** The folder holding the dashboard's files. */
export const assetsDirectory = (): string => {
  if (assetsDir === undefined) assetsDir = join(dirname(createRequire(import.meta.url).resolve("@plinth/server/package.json")), "assets")
  return assetsDir
}

/** One asset's bytes, or undefined when the file is absent. */
export const readAsset = async (name: AssetName): Promise<Uint8Array | undefined> => {
  try {
    return await readFile(join(assetsDirectory(), name))
  } catch {
    return undefined
  }
}
