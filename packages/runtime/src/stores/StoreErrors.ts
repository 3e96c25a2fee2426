import type { SqlError } from "@effect/sql/SqlError"
import { Schema } from "effect"

/** The database file cannot be opened, read or written (permissions, a full disk, not a SQLite file, locked too long). */
export class StoreUnavailable extends Schema.TaggedError<StoreUnavailable>()("StoreUnavailable", {
  path: Schema.String,
  reason: Schema.String,
}) {
  override get message() {
    return `the Plinth database '${this.path}' cannot be used: ${this.reason}; check the data directory (--data-dir) and its permissions`
  }

  static fromSql(path: string, error: SqlError | { readonly message: string; readonly cause?: unknown }): StoreUnavailable {
    return new StoreUnavailable({ path, reason: describeCause(error.cause) ?? error.message })
  }

  static fromDefect(path: string, defect: unknown): StoreUnavailable {
    return new StoreUnavailable({ path, reason: describeCause(defect) ?? String(defect) })
  }
}

/** After migration the file does not have the schema this Plinth expects (a newer Plinth wrote it, or migration did not take). */
export class StoreSchemaMismatch extends Schema.TaggedError<StoreSchemaMismatch>()("StoreSchemaMismatch", {
  path: Schema.String,
  expected: Schema.Number,
  found: Schema.Number,
  detail: Schema.String,
}) {
  override get message() {
    if (this.found > this.expected) {
      return `the Plinth database '${this.path}' has schema version ${this.found}, newer than this Plinth knows (${this.expected}); upgrade Plinth or use another --data-dir`
    }
    return this.found === this.expected
      ? `the Plinth database '${this.path}' records schema version ${this.found} but ${this.detail}; move the file aside and start again`
      : `the Plinth database '${this.path}' is not at schema version ${this.expected} after migration (${this.detail}); start again, and if it persists move the file aside`
  }
}

// One line from whatever SQLite or the file system threw: its message, without a stack.
const describeCause = (cause: unknown): string | undefined => {
  if (cause instanceof Error && cause.message !== "") {
    const code = (cause as { code?: unknown }).code
    const first = cause.message.split("\n")[0]!
    return typeof code === "string" && !first.includes(code) ? `${first} (${code})` : first
  }
  return undefined
}
