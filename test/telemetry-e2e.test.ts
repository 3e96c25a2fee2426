import { createServer, type IncomingMessage } from "node:http"
import type { AddressInfo } from "node:net"
import { rmSync } from "node:fs"
import { afterAll, describe, expect, it } from "vitest"
import { examplesWorkspace, plinth } from "./support/cli.js"

/*
 * `plinth plugins invoke` with OTEL_EXPORTER_OTLP_ENDPOINT set exports its
 * spans over OTLP/HTTP before it exits: a listener standing in for a
 * collector receives them from a real run, worker and all.
 */

const dirs: Array<string> = []
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })))

const collector = async () => {
  const received: Array<{ readonly path: string; readonly contentType: string; readonly body: Buffer }> = []
  const server = createServer((request: IncomingMessage, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      received.push({ path: request.url ?? "", contentType: String(request.headers["content-type"] ?? ""), body: Buffer.concat(chunks) })
      response.writeHead(200, { "content-type": "application/json" }).end("{}")
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, received, close: () => new Promise<void>((resolve) => server.close(() => resolve())) }
}

describe("OpenTelemetry export from the CLI", () => {
  it("a real invoke sends plinth.call (and the load and worker start) to OTEL_EXPORTER_OTLP_ENDPOINT; without it nothing is sent", async () => {
    const otlp = await collector()
    try {
      const dir = examplesWorkspace()
      dirs.push(dir)
      const args = ["plugins", "invoke", "greeter", "greet", "--input", '{"name":"Ada"}', "--json", "--data-dir", `${dir}/.plinth`]

      const plain = await plinth(dir, args)
      expect(plain.code).toBe(0)
      expect(otlp.received).toEqual([])

      const traced = await plinth(dir, args, { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url })
      expect(traced.code).toBe(0)
      expect(JSON.parse(traced.stdout.trim().split("\n").at(-1)!)).toMatchObject({ ok: true })
      // Exported before the process exited: nothing to wait for.
      expect(otlp.received.map((r) => r.path)).toContain("/v1/traces")
      const bodies = Buffer.concat(otlp.received.map((r) => r.body))
      for (const name of ["plinth.call", "plinth.load", "plinth.instance.start", "plinth.verify", "greeter"]) expect(bodies.includes(name)).toBe(true)
      expect(otlp.received[0]!.contentType).toMatch(/^application\/(x-protobuf|json)/)
    } finally {
      await otlp.close()
    }
  }, 60_000)
})
