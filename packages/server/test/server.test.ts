import { mkdtempSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Layer, Stream } from "effect"
import fc from "fast-check"
import { ensureToken, isAllowedHost, PlinthServer, ServeHostLayer, ServerLive, sseEventText, sseFrames, tokenMatches } from "@plinth/server"
import { examplesWorkspace } from "../../../test/support/cli.js"

/*
 * The server in-process, over a real host (verification, manager, queue,
 * journal): an event stream's subscriptions live exactly as long as its
 * connection; the token's files; the SSE reader the CLI uses.
 */

const dir = examplesWorkspace("plinth-server-")
const ServerOverExamples = ServerLive({ port: 0, token: "t".repeat(43), plugins: [] }).pipe(
  Layer.provide(ServeHostLayer({ root: join(dir, "plugins"), lock: join(dir, "PLUGINS.lock"), dataDir: join(dir, ".plinth") })),
)

/** The effect's value once `done` holds, looking every 20 ms. */
const until = <A>(effect: Effect.Effect<A>, done: (a: A) => boolean): Effect.Effect<A> =>
  Effect.repeat(Effect.zipLeft(effect, Effect.sleep(Duration.millis(20))), { until: (a: A) => done(a) })

/** Opens the event stream and reads until the server says it has subscribed this client. */
const connect = (url: string) =>
  Effect.promise(async () => {
    const controller = new AbortController()
    const response = await fetch(`${url}/api/events`, { signal: controller.signal })
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
    let text = ""
    while (!text.includes(": connected")) text += (await reader.read()).value ?? ""
    return controller
  })

describe("the event stream", () => {
  it.scopedLive("holds a client's subscriptions while it is connected, and ends them when it disconnects", () =>
    Effect.gen(function* () {
      const server = yield* PlinthServer
      expect(yield* server.eventStreams).toBe(0)
      const first = yield* connect(server.url)
      const second = yield* connect(server.url)
      expect(yield* server.eventStreams).toBe(2)
      first.abort()
      expect(yield* until(server.eventStreams, (n) => n === 1)).toBe(1)
      second.abort()
      expect(yield* until(server.eventStreams, (n) => n === 0)).toBe(0)
    }).pipe(Effect.provide(ServerOverExamples), Effect.orDie),
  )
})

describe("the token", () => {
  it("is made once, 43 characters of base64url in a 0600 file in a 0700 folder, and kept after", () => {
    const dataDir = mkdtempSync(join(tmpdir(), "plinth-token-"))
    const first = ensureToken(dataDir)
    expect(first.created).toBe(true)
    expect(first.token).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(statSync(first.path).mode & 0o777).toBe(0o600)
    expect(statSync(join(dataDir, "serve")).mode & 0o777).toBe(0o700)
    const again = ensureToken(dataDir)
    expect(again).toEqual({ ...first, created: false })
    expect(ensureToken(mkdtempSync(join(tmpdir(), "plinth-token-"))).token).not.toBe(first.token)
  })

  it("matches only itself", () => {
    const token = ensureToken(mkdtempSync(join(tmpdir(), "plinth-token-"))).token
    expect(tokenMatches(token, token)).toBe(true)
    expect(tokenMatches(token, `${token.slice(0, -1)}${token.endsWith("A") ? "B" : "A"}`)).toBe(false)
    expect(tokenMatches(token, token.slice(1))).toBe(false)
    expect(tokenMatches(token, "")).toBe(false)
  })
})

describe("the SSE reader", () => {
  it.effect("reads comments, events and multi-line data, however the lines were split", () =>
    Effect.gen(function* () {
      const text = ": connected\n\nevent: job\ndata: {\"a\":1}\n\n: ping\n\nevent: instance\ndata: one\ndata: two\n\n"
      const frames = yield* Stream.runCollect(sseFrames(Stream.fromIterable(text.split("\n"))))
      expect(Chunk.toReadonlyArray(frames)).toEqual([
        { comment: "connected" },
        { event: "job", data: '{"a":1}' },
        { comment: "ping" },
        { event: "instance", data: "one\ntwo" },
      ])
    }),
  )
})

describe("the SSE wire format", () => {
  it.effect("reads back every event the server writes, however the bytes arrive in chunks", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(
          fc.array(fc.record({ event: fc.constantFrom("job", "instance"), data: fc.jsonValue() }), { maxLength: 8 }),
          fc.array(fc.nat(), { maxLength: 6 }),
          async (events, cuts) => {
            const text = `: connected\n\n${events.map(({ event, data }) => sseEventText(event, data)).join("")}`
            const bytes = new TextEncoder().encode(text)
            const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b)
            const chunks = [0, ...points].map((start, i) => bytes.slice(start, [...points, bytes.length][i]))
            const frames = await Effect.runPromise(
              Stream.runCollect(sseFrames(Stream.fromIterable(chunks).pipe(Stream.decodeText(), Stream.splitLines))),
            )
            const read = Chunk.toReadonlyArray(frames)
            expect(read[0]).toEqual({ comment: "connected" })
            expect(read.slice(1).map((f) => ({ event: f.event, data: JSON.parse(f.data!) }))).toEqual(
              events.map(({ event, data }) => ({ event, data: JSON.parse(JSON.stringify(data)) })),
            )
          },
        ),
        { numRuns: 200 },
      ),
    ),
  )
})

describe("the Host check", () => {
  it("accepts loopback names and the bound address with any port, and nothing else", () => {
    for (const header of ["127.0.0.1:7717", "localhost:7717", "LOCALHOST:1", "[::1]:7717", "127.0.0.1"]) expect(isAllowedHost("127.0.0.1", header), header).toBe(true)
    for (const header of ["attacker.example:7717", "127.0.0.1.attacker.example:7717", "localhost.attacker.example", "", "[::2]:7717"])
      expect(isAllowedHost("127.0.0.1", header), header).toBe(false)
    expect(isAllowedHost("127.0.0.1", undefined)).toBe(false)
    expect(isAllowedHost("10.1.2.3", "10.1.2.3:7717")).toBe(true)
    expect(isAllowedHost("10.1.2.3", "10.1.2.4:7717")).toBe(false)
  })
})
