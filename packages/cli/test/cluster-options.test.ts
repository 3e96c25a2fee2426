import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { clusterSettings, parseHostPort, type ClusterFlags } from "../src/ClusterOptions.js"

/*
 * `plinth serve --cluster`'s flags, checked before anything starts: what a
 * runner needs, and a usage error naming what is missing or wrong otherwise,
 * never repeating the database URL (it may hold a password).
 */

const flags = (overrides: Partial<ClusterFlags>): ClusterFlags => ({
  cluster: true,
  database: "postgres://plinth:s3cret@10.0.0.4:5432/plinth",
  databaseFlag: true,
  runnerAddress: "10.0.0.5:7718",
  runnerListen: undefined,
  ...overrides,
})

const problem = (overrides: Partial<ClusterFlags>) => Either.getLeft(clusterSettings(flags(overrides))).pipe((left) => (left._tag === "Some" ? left.value : undefined))

describe("serve --cluster flags", () => {
  it("reads HOST:PORT and [IPv6]:PORT with a port from 1 to 65535, and nothing else", () => {
    expect(parseHostPort("10.0.0.5:7718")).toEqual({ host: "10.0.0.5", port: 7718 })
    expect(parseHostPort("runner-b.internal:1")).toEqual({ host: "runner-b.internal", port: 1 })
    expect(parseHostPort("[::1]:65535")).toEqual({ host: "::1", port: 65535 })
    for (const bad of ["", "10.0.0.5", "10.0.0.5:", ":7718", "10.0.0.5:0", "10.0.0.5:65536", "::1:7718", "a b:1", "host:77x", "http://h:1", "h:123456"])
      expect(parseHostPort(bad), bad).toBeUndefined()
  })

  it("gives a runner its database, address and listen address", () => {
    expect(clusterSettings(flags({}))).toEqual(Either.right({ database: "postgres://plinth:s3cret@10.0.0.4:5432/plinth", runner: { host: "10.0.0.5", port: 7718 } }))
    expect(clusterSettings(flags({ runnerListen: "0.0.0.0:7718", database: "postgresql://db/plinth" }))).toEqual(
      Either.right({ database: "postgresql://db/plinth", runner: { host: "10.0.0.5", port: 7718 }, listen: { host: "0.0.0.0", port: 7718 } }),
    )
  })

  it("serves alone without --cluster, whatever PLINTH_DATABASE_URL holds, and refuses the cluster's flags without it", () => {
    expect(clusterSettings(flags({ cluster: false, databaseFlag: false, runnerAddress: undefined }))).toEqual(Either.right(undefined))
    expect(problem({ cluster: false, databaseFlag: false })).toBe(
      "--runner-address is for a cluster runner: add --cluster, or leave it out to serve on this host alone",
    )
    expect(problem({ cluster: false, runnerListen: "0.0.0.0:1" })).toMatch(/^--database, --runner-address, --runner-listen are for a cluster runner/)
  })

  it("names what is missing or wrong in one line, without the database URL", () => {
    expect(problem({ database: undefined })).toContain("--cluster needs the cluster's database: pass --database postgres://")
    expect(problem({ database: "" })).toContain("PLINTH_DATABASE_URL")
    expect(problem({ database: "mysql://plinth:s3cret@db/plinth" })).toContain("is not a postgres:// URL")
    expect(problem({ database: "plinth:s3cret" })).toContain("is not a postgres:// URL")
    expect(problem({ runnerAddress: undefined })).toContain("--cluster needs --runner-address HOST:PORT")
    expect(problem({ runnerAddress: "10.0.0.5" })).toContain("--runner-address '10.0.0.5' is not HOST:PORT")
    expect(problem({ runnerListen: "*:80" })).toContain("--runner-listen '*:80' is not HOST:PORT")
    for (const overrides of [{ database: "mysql://plinth:s3cret@db/plinth" }, { runnerAddress: "x" }, { database: undefined }] as const) {
      const text = problem(overrides)!
      expect(text).not.toContain("s3cret")
      expect(text).not.toContain("\n")
    }
  })
})
