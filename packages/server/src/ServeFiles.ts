import { randomBytes, timingSafeEqual } from "node:crypto"
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs"
import { join } from "node:path"
import { Data, Either, Schema } from "effect"
import { decodeJsonText } from "@plinth/domain"

/*
 * What a running `plinth serve` keeps in `<dataDir>/serve/` (a folder only
 * its owner can enter, 0700): `token`, the bearer token every mutating request
 * needs (32 random bytes, base64url, 0600), made at the first start and kept
 * after; `server.json` ({ url, pid }, 0600), written once the server listens
 * and removed when it stops cleanly. `plinth jobs …` reads both to find the
 * server and to authenticate. See ADR 0032.
 */

/** The token or server.json cannot be written (a read-only data directory, a folder in the way). */
export class ServeStateUnavailable extends Data.TaggedError("ServeStateUnavailable")<{ readonly path: string; readonly detail: string }> {
  override get message() {
    return `cannot write ${this.path}: ${this.detail}; check that the data directory (--data-dir) is writable`
  }
}

export const serveDirectory = (dataDir: string) => join(dataDir, "serve")
export const tokenPath = (dataDir: string) => join(serveDirectory(dataDir), "token")
export const serverInfoPath = (dataDir: string) => join(serveDirectory(dataDir), "server.json")

/** What `server.json` holds. */
const ServerInfo = Schema.Struct({ url: Schema.String, pid: Schema.Int })
export type ServerInfo = typeof ServerInfo.Type
/** A server.json is one short line: anything longer or nested is not one. */
const serverInfoCaps = { maxChars: 4096, maxDepth: 2 }

const ensureServeDirectory = (dataDir: string) => {
  const dir = serveDirectory(dataDir)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  // mkdir's mode is masked by the umask, and an existing folder keeps its own: set it.
  chmodSync(dir, 0o700)
  return dir
}

/** Writes `text` to `file` as a fresh 0600 file, replacing any old one in one rename. */
const writePrivate = (file: string, text: string) => {
  const temporary = `${file}.${process.pid}.tmp`
  const fd = openSync(temporary, "w", 0o600)
  try {
    writeSync(fd, text)
  } finally {
    closeSync(fd)
  }
  chmodSync(temporary, 0o600)
  renameSync(temporary, file)
}

const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/

/**
 * The server's token: read from `<dataDir>/serve/token`, or made and stored
 * there when there is none (or it is not a token). `created` says the latter:
 * the token is printed only then.
 */
export const ensureToken = (dataDir: string): { readonly token: string; readonly created: boolean; readonly path: string } => {
  ensureServeDirectory(dataDir)
  const path = tokenPath(dataDir)
  const existing = readToken(dataDir)
  if (existing !== undefined) {
    chmodSync(path, 0o600)
    return { token: existing, created: false, path }
  }
  const token = randomBytes(32).toString("base64url")
  writePrivate(path, `${token}\n`)
  return { token, created: true, path }
}

/** The stored token, or undefined when there is none. */
export const readToken = (dataDir: string): string | undefined => {
  try {
    const text = readFileSync(tokenPath(dataDir), "utf8").trim()
    return TOKEN_PATTERN.test(text) ? text : undefined
  } catch {
    return undefined
  }
}

/** Whether `given` is the token, in time that does not depend on where they differ. */
export const tokenMatches = (token: string, given: string): boolean => {
  const a = Buffer.from(token, "utf8")
  const b = Buffer.from(given, "utf8")
  // timingSafeEqual needs equal lengths; compare against itself so a wrong length costs the same work.
  if (a.length !== b.length) {
    timingSafeEqual(a, a)
    return false
  }
  return timingSafeEqual(a, b)
}

export const writeServerInfo = (dataDir: string, info: ServerInfo) => {
  ensureServeDirectory(dataDir)
  writePrivate(serverInfoPath(dataDir), `${JSON.stringify(info)}\n`)
}

/** Removes `server.json`, only if it is this process's. */
export const removeServerInfo = (dataDir: string, pid: number = process.pid) => {
  const info = readServerInfo(dataDir)
  if (info !== undefined && info.pid === pid) rmSync(serverInfoPath(dataDir), { force: true })
}

export const readServerInfo = (dataDir: string): ServerInfo | undefined => {
  const path = serverInfoPath(dataDir)
  if (!existsSync(path)) return undefined
  let text: string
  try {
    text = readFileSync(path, "utf8")
  } catch {
    return undefined
  }
  // As every JSON Plinth reads from disk: capped, then decoded with its Schema; anything else is no server.
  return Either.getOrUndefined(decodeJsonText(ServerInfo, text, serverInfoCaps))
}

/** Whether a process with this pid exists (a server.json left by a killed server names a dead one). */
export const processAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}
