import { Either } from "effect"

/*
 * `plinth serve --cluster`'s options, checked before anything is verified,
 * started or imported: a missing database or runner address, an address that
 * is not HOST:PORT, or a database that is not a postgres:// URL is a usage
 * error in one line. Pure, so that it is tested without a cluster.
 */

export interface HostPort {
  readonly host: string
  readonly port: number
}

/** What `--cluster` runs with, once checked. */
export interface ClusterSettings {
  readonly database: string
  readonly runner: HostPort
  readonly listen?: HostPort
}

/** The flags as parsed (`database` from `--database`, else PLINTH_DATABASE_URL). */
export interface ClusterFlags {
  readonly cluster: boolean
  readonly database: string | undefined
  /** Whether `--database` itself was given (not the environment). */
  readonly databaseFlag: boolean
  readonly runnerAddress: string | undefined
  readonly runnerListen: string | undefined
}

/**
 * `HOST:PORT` or `[IPv6]:PORT`, a port from 1 to 65535 (other runners connect
 * to it: 0, "any free port", could not be found by them).
 */
export const parseHostPort = (text: string): HostPort | undefined => {
  const match = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(text) ?? /^([A-Za-z0-9._-]+):(\d{1,5})$/.exec(text)
  if (match === null) return undefined
  const port = Number(match[2])
  return port >= 1 && port <= 65535 ? { host: match[1]!, port } : undefined
}

const isPostgresUrl = (text: string): boolean => {
  try {
    const url = new URL(text)
    return (url.protocol === "postgres:" || url.protocol === "postgresql:") && url.hostname !== ""
  } catch {
    return false
  }
}

const addressProblem = (flag: string, text: string) =>
  `${flag} '${text}' is not HOST:PORT with a port from 1 to 65535 (for example 10.0.0.5:7718): give the address other runners reach this one at`

/**
 * The cluster settings, none without `--cluster`, or what is wrong with the
 * flags. The database URL is never repeated in a message: it may hold a password.
 */
export const clusterSettings = (flags: ClusterFlags): Either.Either<ClusterSettings | undefined, string> => {
  if (!flags.cluster) {
    const stray = [flags.databaseFlag ? "--database" : undefined, flags.runnerAddress !== undefined ? "--runner-address" : undefined, flags.runnerListen !== undefined ? "--runner-listen" : undefined].filter(
      (flag) => flag !== undefined,
    )
    return stray.length > 0 ? Either.left(`${stray.join(", ")} ${stray.length === 1 ? "is" : "are"} for a cluster runner: add --cluster, or leave ${stray.length === 1 ? "it" : "them"} out to serve on this host alone`) : Either.right(undefined)
  }
  if (flags.database === undefined || flags.database === "")
    return Either.left("--cluster needs the cluster's database: pass --database postgres://USER:PASSWORD@HOST:PORT/DATABASE or set PLINTH_DATABASE_URL")
  if (!isPostgresUrl(flags.database))
    return Either.left("the cluster's database (--database or PLINTH_DATABASE_URL) is not a postgres:// URL: give postgres://USER:PASSWORD@HOST:PORT/DATABASE")
  if (flags.runnerAddress === undefined)
    return Either.left("--cluster needs --runner-address HOST:PORT: the address other runners reach this one at (for example 10.0.0.5:7718)")
  const runner = parseHostPort(flags.runnerAddress)
  if (runner === undefined) return Either.left(addressProblem("--runner-address", flags.runnerAddress))
  if (flags.runnerListen === undefined) return Either.right({ database: flags.database, runner })
  const listen = parseHostPort(flags.runnerListen)
  if (listen === undefined) return Either.left(addressProblem("--runner-listen", flags.runnerListen).replace("other runners reach this one at", "this runner listens on (for example 0.0.0.0:7718)"))
  return Either.right({ database: flags.database, runner, listen })
}
