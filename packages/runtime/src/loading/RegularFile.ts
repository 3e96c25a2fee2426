import { closeSync, constants, fstatSync, openSync, readFileSync } from "node:fs"
import { Effect } from "effect"

/** Why a small file could not be read, in words that fit after "<path> ...". */
export class RegularFileRefused {
  readonly _tag = "RegularFileRefused"
  constructor(
    readonly detail: string,
    /** Nothing exists at the path (ENOENT), as opposed to something unreadable or not a regular file. */
    readonly missing: boolean = false,
  ) {}
}

const describe = (error: unknown) => {
  const e = error as NodeJS.ErrnoException
  return typeof e?.code === "string" ? `${e.code}: ${e.message}` : String(error)
}

/**
 * Reads a small text file that must be a regular file (a lock, a manifest).
 * The file is opened non-blocking and checked through its descriptor, so a
 * FIFO never blocks the read (opening one for reading without O_NONBLOCK
 * waits for a writer), a device is never read, and a file swapped between a
 * check and the read cannot slip through: what is checked is what is read.
 */
export const readRegularFileText = (path: string, maxBytes: number): Effect.Effect<string, RegularFileRefused> =>
  Effect.suspend(() => {
    let fd: number
    try {
      fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK)
    } catch (error) {
      const missing = (error as NodeJS.ErrnoException)?.code === "ENOENT"
      return Effect.fail(new RegularFileRefused(missing ? "does not exist" : `cannot be read (${describe(error)})`, missing))
    }
    try {
      const info = fstatSync(fd)
      if (info.isDirectory()) return Effect.fail(new RegularFileRefused("is a folder, not a regular file"))
      if (!info.isFile()) return Effect.fail(new RegularFileRefused("is not a regular file (a FIFO, socket or device)"))
      // Characters never outnumber bytes, so a byte cap is a safe first fence.
      if (info.size > maxBytes) return Effect.fail(new RegularFileRefused(`is larger than ${maxBytes} bytes`))
      return Effect.succeed(readFileSync(fd, "utf8"))
    } catch (error) {
      return Effect.fail(new RegularFileRefused(`cannot be read (${describe(error)})`))
    } finally {
      closeSync(fd)
    }
  })
