import { Array as Arr, Encoding, Order } from "effect"
import type { Digest, Sha256Hex } from "./Ids.js"
import { compareBytewise } from "./PluginPath.js"

/** One regular file of a plugin tree: its relative path and the SHA-256 of its bytes. */
export interface TreeEntry {
  readonly path: string
  readonly sha256: Sha256Hex
}

const byPath: Order.Order<TreeEntry> = (a, b) => {
  const c = compareBytewise(a.path, b.path)
  return c < 0 ? -1 : c > 0 ? 1 : 0
}

export const sortEntries = (entries: Iterable<TreeEntry>): ReadonlyArray<TreeEntry> => Arr.sort(entries, byPath)

/**
 * The text whose SHA-256 is the tree digest (Go's dirhash Hash1):
 * one line `<sha256 hex>  <path>\n` per file, sorted bytewise by path.
 * The same text as `find . -type f | LC_ALL=C sort | xargs sha256sum` with the `./` removed.
 */
export const digestSummary = (entries: Iterable<TreeEntry>): string =>
  sortEntries(entries)
    .map((e) => `${e.sha256}  ${e.path}\n`)
    .join("")

/** Formats the SHA-256 of the summary as a dirhash `h1:` digest. */
export const formatDigest = (summarySha256: Uint8Array): Digest => `h1:${Encoding.encodeBase64(summarySha256)}` as Digest

/** Per-file evidence of how a tree differs from what was locked. */
export interface TreeDiff {
  readonly added: ReadonlyArray<string>
  readonly removed: ReadonlyArray<string>
  readonly changed: ReadonlyArray<string>
}

export const diffFileMaps = (
  expected: Readonly<Record<string, string>>,
  actual: Readonly<Record<string, string>>,
): TreeDiff => {
  const sorted = (xs: Array<string>) => xs.sort(compareBytewise)
  const added: Array<string> = []
  const removed: Array<string> = []
  const changed: Array<string> = []
  for (const path of Object.keys(actual)) {
    if (!Object.hasOwn(expected, path)) added.push(path)
    else if (expected[path] !== actual[path]) changed.push(path)
  }
  for (const path of Object.keys(expected)) if (!Object.hasOwn(actual, path)) removed.push(path)
  return { added: sorted(added), removed: sorted(removed), changed: sorted(changed) }
}

export const isEmptyDiff = (d: TreeDiff): boolean => d.added.length + d.removed.length + d.changed.length === 0
