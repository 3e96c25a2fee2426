import { Encoding } from "effect"
import type { Digest, Sha256Hex } from "./Ids.js"
import type { LockEntry } from "./LockFile.js"
import { ownRecordFrom } from "./OwnRecord.js"
import { IntegrityMismatch } from "./PluginRejected.js"
import { compareBytewise } from "./PluginPath.js"

/*
 * The one tree-digest spec (Go's dirhash `Hash1`): what a plugin tree's digest
 * is, and when a measured tree matches its lock entry. The runtime's hashing
 * folder computes the SHA-256 values; everything that verifies a tree (files on
 * disk, bytes in memory) goes through `digestSummary` and `lockMismatch`.
 */

/** One regular file of a plugin tree: its relative path and the SHA-256 of its bytes. */
export interface TreeEntry {
  readonly path: string
  readonly sha256: Sha256Hex
}

// UTF-16 order equals UTF-8 byte order unless a surrogate pair meets a code unit in U+E000..U+FFFF.
const surrogate = /[\uD800-\uDFFF]/
const byCodeUnits = (a: { readonly path: string }, b: { readonly path: string }) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)
const byBytes = (a: { readonly path: string }, b: { readonly path: string }) => compareBytewise(a.path, b.path)

/**
 * Sorts in place, bytewise (UTF-8) by path, as Go's sort.Strings and
 * `LC_ALL=C sort` do. Plain string order is the same order when no path holds
 * a surrogate, and spares encoding both paths on every comparison.
 */
export const sortByPathInPlace = <T extends { readonly path: string }>(items: Array<T>): Array<T> =>
  items.sort(items.some((item) => surrogate.test(item.path)) ? byBytes : byCodeUnits)

export const sortEntries = (entries: Iterable<TreeEntry>): ReadonlyArray<TreeEntry> => sortByPathInPlace(Array.from(entries))

/**
 * The text whose SHA-256 is the tree digest (Go's dirhash Hash1):
 * one line `<sha256 hex>  <path>\n` per file, sorted bytewise by path.
 * The same text as `find . -type f | LC_ALL=C sort | xargs sha256sum` with the `./` removed.
 */
export const digestSummary = (entries: Iterable<TreeEntry>): string => {
  let text = ""
  for (const e of sortEntries(entries)) text += `${e.sha256}  ${e.path}\n`
  return text
}

/** Formats the SHA-256 of the summary as a dirhash `h1:` digest. */
export const formatDigest = (summarySha256: Uint8Array): Digest => `h1:${Encoding.encodeBase64(summarySha256)}` as Digest

/** A tree as measured: per-file hashes and the digest over them. */
export interface MeasuredTree {
  readonly entries: ReadonlyArray<TreeEntry>
  readonly digest: Digest
}

/** The per-file map a lock entry records for a measured tree (prototype-free: any file name is a key). */
export const lockedFiles = (entries: Iterable<TreeEntry>): Record<string, Sha256Hex> =>
  ownRecordFrom(Array.from(entries, (e) => [e.path, e.sha256] as const))

/**
 * Whether a measured tree is the locked one. The digest decides: it covers
 * every path and every file's bytes. The lock's per-file map only explains a
 * mismatch, naming the added, removed and changed files.
 */
export const lockMismatch = (plugin: string, locked: LockEntry, measured: MeasuredTree): IntegrityMismatch | undefined => {
  if (measured.digest === locked.digest) return undefined
  const diff = diffFileMaps(locked.files, lockedFiles(measured.entries))
  return new IntegrityMismatch({ plugin, expected: locked.digest, actual: measured.digest, ...diff })
}

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
