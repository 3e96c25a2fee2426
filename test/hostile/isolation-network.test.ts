import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { rmSync } from "node:fs"
import { createServer, type Server } from "node:net"
import { join } from "node:path"
import { Effect } from "effect"
import { startInstance } from "@plinth/runtime"
import { tempDir } from "../support/plugins.js"
import { hostilePlugin, IsolationTestLive, tiers } from "./support/isolation.js"

const root = tempDir("plinth-hostile-net-")
const socketPath = join(root, "host.sock")
let connections = 0
const servers: Array<Server> = []
const listen = (server: Server, address: string | { port: number; host: string }) =>
  new Promise<void>((resolve) => {
    servers.push(server)
    if (typeof address === "string") server.listen(address, resolve)
    else server.listen(address.port, address.host, resolve)
  })
let tcpPort = 0

beforeAll(async () => {
  const serve = () =>
    createServer((socket) => {
      connections++
      socket.end("hello from the host\n")
    })
  const tcp = serve()
  await listen(tcp, { port: 0, host: "127.0.0.1" })
  tcpPort = (tcp.address() as { port: number }).port
  await listen(serve(), socketPath)
})
afterAll(async () => {
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))))
  rmSync(root, { recursive: true, force: true })
})

const connect = `
  connect: action({ description: "", input: Schema.Struct({ port: Schema.optional(Schema.Number), path: Schema.optional(Schema.String) }), output: Schema.String,
    handler: (target) => Effect.async((resume) => {
      const socket = target.path !== undefined ? net.connect(target.path) : net.connect(target.port, "127.0.0.1")
      let answer = ""
      socket.setTimeout(3000, () => { socket.destroy(); resume(Effect.succeed("unreachable: timeout")) })
      socket.on("data", (chunk) => { answer += chunk })
      socket.on("end", () => resume(Effect.succeed("connected: " + answer.trim())))
      socket.on("error", (error) => resume(Effect.succeed("unreachable: " + (error.code ?? error.message))))
    }) }),
`

describe.each(tiers)("isolation tier %s: listeners on the host", (tier) => {
  it.scopedLive(
    tier === "os"
      ? "TCP on 127.0.0.1 and a Unix socket of the host are unreachable without a network grant"
      : "TCP on 127.0.0.1 and a Unix socket of the host ARE reachable: Node's permission model does not cover the network",
    () =>
      Effect.gen(function* () {
        const { plugin, locked } = yield* hostilePlugin(root, `net-${tier}`, { actions: connect, prelude: `import net from "node:net"` })
        const instance = yield* startInstance({ plugin, locked, drift: "ignore", isolation: tier })
        const before = connections
        const tcp = yield* instance.invoke("connect", { port: tcpPort })
        const unix = yield* instance.invoke("connect", { path: socketPath })
        if (tier === "os") {
          // Its own network namespace: 127.0.0.1 is the sandbox's own loopback; the socket file is not mounted.
          expect(tcp).toMatch(/^unreachable: (ECONNREFUSED|ENETUNREACH)/)
          expect(unix).toMatch(/^unreachable: (ENOENT|ECONNREFUSED|ERR_ACCESS_DENIED)/)
          expect(connections).toBe(before)
        } else {
          // Honest: this is what the permission tier does not block (README, sandbox table).
          expect(tcp).toBe("connected: hello from the host")
          expect(unix).toBe("connected: hello from the host")
          expect(connections).toBe(before + 2)
        }
      }).pipe(Effect.provide(IsolationTestLive)),
  )
})

describe("isolation tier os: permissions.network", () => {
  it.scopedLive("a manifest granting the network shares the host's network: the same listener is reachable", () =>
    Effect.gen(function* () {
      const { plugin, locked } = yield* hostilePlugin(root, "net-granted", {
        actions: connect,
        prelude: `import net from "node:net"`,
        manifest: { permissions: { network: true } },
      })
      const instance = yield* startInstance({ plugin, locked, drift: "ignore", isolation: "os" })
      expect(yield* instance.invoke("connect", { port: tcpPort })).toBe("connected: hello from the host")
    }).pipe(Effect.provide(IsolationTestLive)),
  )
})
