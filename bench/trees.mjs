// Deterministic benchmark trees: the same seed always yields the same paths,
// sizes and bytes, so runs on different days measure the same work.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"

const GENERATOR_VERSION = 1
const MiB = 1024 * 1024

export const TREES = [
  { name: "large-files", files: 2_000, totalBytes: 512 * MiB, seed: 0x5eed_0001, filesPerFolder: 40 },
  { name: "many-small-files", files: 20_000, totalBytes: 50 * MiB, seed: 0x5eed_0002, filesPerFolder: 25 },
]

/** mulberry32: tiny, fast and good enough to spread sizes and names. */
const prng = (seed) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** File sizes drawn log-uniformly over three decades, scaled to add up exactly to the total. */
const fileSizes = (tree, random) => {
  const weights = Array.from({ length: tree.files }, () => Math.exp(random() * Math.log(1000)))
  const sum = weights.reduce((a, b) => a + b, 0)
  const sizes = weights.map((w) => Math.floor((tree.totalBytes * w) / sum))
  // A few empty files, as real packages have them.
  for (let i = 7; i < sizes.length; i += 997) sizes[i] = 0
  let rest = tree.totalBytes - sizes.reduce((a, b) => a + b, 0)
  for (let i = 0; rest > 0; i = (i + 1) % sizes.length) {
    const add = Math.min(rest, 1 + Math.floor(rest / sizes.length))
    if (sizes[i] > 0) {
      sizes[i] += add
      rest -= add
    }
  }
  return sizes
}

/** Nested folders one to three levels deep, with names that sort differently bytewise and by locale. */
const filePaths = (tree, random) => {
  const paths = []
  const folders = Math.ceil(tree.files / tree.filesPerFolder)
  for (let f = 0; f < folders; f++) {
    const depth = 1 + Math.floor(random() * 3)
    const parts = []
    for (let d = 0; d < depth; d++) parts.push(`${d === 0 ? "Pkg" : "lib"}-${Math.floor(random() * 1e6).toString(36)}`)
    parts[parts.length - 1] += `_${f}`
    const folder = parts.join("/")
    for (let i = 0; i < tree.filesPerFolder && paths.length < tree.files; i++) {
      const ext = [".js", ".json", ".md", ".wasm", ".d.ts", ".map"][Math.floor(random() * 6)]
      paths.push(`${folder}/${i % 3 === 0 ? "A" : "m"}odule.${i}${ext}`)
    }
  }
  return paths
}

/** xorshift128 stream into a buffer: incompressible bytes without asking the system for entropy. */
const fillBytes = (buffer, state) => {
  const words = new Uint32Array(buffer.buffer, buffer.byteOffset, Math.floor(buffer.length / 4))
  let [x, y, z, w] = state
  for (let i = 0; i < words.length; i++) {
    const t = x ^ (x << 11)
    x = y
    y = z
    z = w
    w = (w ^ (w >>> 19) ^ t ^ (t >>> 8)) >>> 0
    words[i] = w
  }
  for (let i = words.length * 4; i < buffer.length; i++) buffer[i] = w & 0xff
  state[0] = x
  state[1] = y
  state[2] = z
  state[3] = w
}

const describeTree = (tree) => ({ generator: GENERATOR_VERSION, ...tree })

/**
 * Returns the folder holding the tree, generating it only when no folder with
 * the same description (seed, count, size, generator version) exists yet.
 */
export const ensureTree = (dataDir, tree, log = () => {}) => {
  const root = join(dataDir, tree.name)
  const stampPath = join(dataDir, `${tree.name}.json`)
  const wanted = JSON.stringify(describeTree(tree))
  if (existsSync(stampPath) && existsSync(root) && readFileSync(stampPath, "utf8") === wanted) return root
  log(`generating ${tree.name}: ${tree.files} files, ${tree.totalBytes / MiB} MiB (seed ${tree.seed.toString(16)}) ...`)
  rmSync(root, { recursive: true, force: true })
  rmSync(stampPath, { force: true })
  const random = prng(tree.seed)
  const sizes = fileSizes(tree, random)
  const paths = filePaths(tree, random)
  const state = [tree.seed >>> 0, 0x9e3779b9, 0x7f4a7c15, 0x85ebca6b]
  let scratch = Buffer.allocUnsafe(1 * MiB)
  for (let i = 0; i < paths.length; i++) {
    const path = join(root, paths[i])
    mkdirSync(dirname(path), { recursive: true })
    if (scratch.length < sizes[i]) scratch = Buffer.allocUnsafe(sizes[i])
    const bytes = scratch.subarray(0, sizes[i])
    fillBytes(bytes, state)
    writeFileSync(path, bytes)
  }
  writeFileSync(stampPath, wanted)
  return root
}
