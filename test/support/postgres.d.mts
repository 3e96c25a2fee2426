/* Types for postgres.mjs (a plain module, so the benchmarks can use it too). */

export interface TestPostgres {
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  readonly url: string
  readonly port: number
  /** A fresh database on this server, for one test file or case. */
  readonly createDatabase: (name: string) => string
  /** Stops the server (`pg_ctl stop -m immediate`: as a crash looks to clients) and starts it again on the same port. */
  readonly restart: (options?: { readonly downMillis?: number }) => Promise<void>
  readonly stop: () => void
}

export declare const startPostgres: () => Promise<TestPostgres>
