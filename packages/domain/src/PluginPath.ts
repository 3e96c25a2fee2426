import { Either } from "effect"

/**
 * Rules for a path relative to a plugin folder, as it appears in a tree digest,
 * a lock file or a manifest's `entry`: `/`-separated, no empty or `.`/`..`
 * segments, not absolute, no backslash, no newline or NUL (a newline would
 * forge a digest line).
 */
export const relativePathProblem = (path: string): string | undefined => {
  if (path.length === 0) return "the path is empty"
  if (path.length > 4096) return "the path is longer than 4096 characters"
  if (/[\n\r\0]/.test(path)) return "the path contains a newline or NUL character"
  if (path.startsWith("/") || /^[A-Za-z]:/.test(path)) return "the path is absolute"
  if (path.includes("\\")) return "the path contains a backslash"
  for (const segment of path.split("/")) {
    if (segment === "" || segment === ".") return "the path has an empty or '.' segment"
    if (segment === "..") return "the path leaves the plugin folder ('..')"
  }
  return undefined
}

export const checkRelativePath = (path: string): Either.Either<string, string> => {
  const problem = relativePathProblem(path)
  return problem === undefined ? Either.right(path) : Either.left(problem)
}

/** Bytewise (UTF-8) order, as Go's sort.Strings and `LC_ALL=C sort` use; JS's default sort is UTF-16 order. */
export const compareBytewise = (a: string, b: string): number => {
  if (a === b) return 0
  const ea = utf8.encode(a)
  const eb = utf8.encode(b)
  const n = Math.min(ea.length, eb.length)
  for (let i = 0; i < n; i++) {
    const d = ea[i]! - eb[i]!
    if (d !== 0) return d
  }
  return ea.length - eb.length
}

const utf8 = new TextEncoder()
