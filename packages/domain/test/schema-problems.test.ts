import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { Either, Schema } from "effect"
import { decodeLockFile, decodeManifest, formatPath, formatSchemaProblems, lineColumn, parseJsonText } from "@plinth/domain"

const valid = { id: "hello", version: "1.0.0", description: "Says hello.", entry: "index.js" }
const manifestText = (patch: Record<string, unknown>) => JSON.stringify({ ...valid, ...patch })
const manifestProblems = (text: string) => Either.getOrThrow(Either.flip(decodeManifest(text))).split("\n")
const lockProblems = (text: string) => Either.getOrThrow(Either.flip(decodeLockFile(text))).split("\n")

const digest = `h1:${Buffer.alloc(32).toString("base64")}`
const sha = "0".repeat(64)

describe("schema failures, one line per problem: where, and what was expected", () => {
  it("names the field, the expectation in words, and the value found", () => {
    expect(manifestProblems(manifestText({ version: "0.1" }))).toEqual(['version: expected a semantic version like 1.2.3, got "0.1"'])
    expect(manifestProblems(manifestText({ version: 1 }))).toEqual(["version: expected a semantic version like 1.2.3, got 1"])
    expect(manifestProblems(manifestText({ id: "Hello" }))).toEqual([
      `id: expected a plugin id: 1-64 characters of a-z, 0-9 and inner '-', got "Hello"`,
    ])
  })

  it("reports every problem, nested paths included, without the undefined branch of optional fields", () => {
    const problems = manifestProblems(
      manifestText({
        entry: "../x.js",
        extra: true,
        actions: { "9x": { description: "d", input: {}, output: {} } },
        permissions: { env: ["1A"], network: "yes" },
        resources: { memoryMiB: 2 },
      }),
    )
    expect(problems).toEqual([
      `extra: not allowed here; the keys allowed are id, version, description, entry, actions, config, permissions, resources, secrets`,
      `entry: expected a relative path to a .js or .mjs file inside the plugin folder, got "../x.js" (the path leaves the plugin folder ('..'))`,
      `actions["9x"]: expected an action name: a letter, then up to 63 letters, digits, '_' or '-', got "9x"`,
      `permissions.env[0]: expected an environment variable name: a letter or '_', then up to 127 letters, digits or '_', got "1A"`,
      `permissions.network: expected true or false, got "yes"`,
      `resources.memoryMiB: expected a whole number of MiB from 16 to 65536, got 2`,
    ])
  })

  it("a missing field, a wrong top-level value", () => {
    const { version: _, ...noVersion } = valid
    expect(manifestProblems(JSON.stringify(noVersion))).toEqual(["version: missing; expected a semantic version like 1.2.3"])
    expect(manifestProblems("[1,2]")).toEqual(["expected a JSON object, got a list of 2 items"])
  })

  it("lock files: literal versions, digests and file paths", () => {
    const text = JSON.stringify({ lockVersion: 2, plugins: { a: { digest: "x", files: { "../a": sha, ok: "nope" } } } })
    expect(lockProblems(text)).toEqual([
      "lockVersion: expected 1 (the lock format this version of plinth reads), got 2",
      `plugins.a.digest: expected a tree digest like h1:<base64 of a SHA-256>, got "x"`,
      `plugins.a.files["../a"]: expected a '/'-separated path inside the plugin folder, got "../a" (the path leaves the plugin folder ('..'))`,
      `plugins.a.files.ok: expected a SHA-256: 64 lower-case hex digits, got "nope"`,
    ])
    expect(Either.isRight(decodeLockFile(JSON.stringify({ lockVersion: 1, plugins: { a: { digest, files: { "a.js": sha } } } })))).toBe(true)
  })

  it("paths quote keys that are not plain words, so no key can break the line", () => {
    expect(formatPath(["files", "a b\nc", 0, "x"])).toBe('files["a b\\nc"][0].x')
  })
})

describe("JSON syntax errors name the line and column", () => {
  it.each([
    ['{\n  "id": "a",\n}', 3, 1, "expected a property name in double quotes"],
    ['{"a" 1}', 1, 6, "expected ':'"],
    ["[1,\n2", 2, 2, "expected ',' or ']'"],
    ["// note\n{}", 1, 1, "comments are not allowed in JSON"],
    ["", 1, 1, "the text is empty"],
  ])("%j", (text, line, column, words) => {
    const problem = Either.getOrThrow(Either.flip(parseJsonText(text, { maxChars: 1000, maxDepth: 10 })))
    expect(problem).toEqual({ _tag: "NotJson", detail: `line ${line}, column ${column}: ${words}`, line, column })
  })

  it("a manifest with a syntax error says where", () => {
    expect(manifestProblems('{"id": "a",\n "version": 1.0.0}')).toEqual(["not valid JSON: line 2, column 16: unexpected character"])
  })

  it("lineColumn counts lines from 1 and columns from 1", () => {
    expect(lineColumn("ab\ncd", 0)).toEqual({ line: 1, column: 1 })
    expect(lineColumn("ab\ncd", 4)).toEqual({ line: 2, column: 2 })
  })
})

const effectInternals = ["<->", "Encoded side", "Type side", "└─", "├─", "From side", "refinement failure", "ReadonlyArray<", "Brand<"]

/** Values near a manifest or lock: valid fields replaced by arbitrary JSON, extra keys, wrong nesting. */
const nearManifest = fc
  .record(
    {
      id: fc.oneof(fc.constant("hello"), fc.jsonValue()),
      version: fc.oneof(fc.constant("1.0.0"), fc.string(), fc.jsonValue()),
      description: fc.oneof(fc.string(), fc.jsonValue()),
      entry: fc.oneof(fc.constant("index.js"), fc.string(), fc.jsonValue()),
      actions: fc.oneof(fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 3 }), fc.jsonValue()),
      config: fc.jsonValue(),
      permissions: fc.oneof(fc.record({ env: fc.array(fc.string(), { maxLength: 3 }), network: fc.jsonValue() }, { requiredKeys: [] }), fc.jsonValue()),
      resources: fc.oneof(fc.record({ memoryMiB: fc.jsonValue() }), fc.jsonValue()),
    },
    { requiredKeys: [] },
  )
  .chain((m) => fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 2 }).map((extra) => ({ ...extra, ...m })))

const nearLock = fc.record(
  {
    lockVersion: fc.oneof(fc.constant(1), fc.jsonValue()),
    plugins: fc.oneof(
      fc.dictionary(
        fc.string(),
        fc.oneof(fc.record({ digest: fc.oneof(fc.constant(digest), fc.jsonValue()), files: fc.dictionary(fc.string(), fc.oneof(fc.constant(sha), fc.jsonValue()), { maxKeys: 3 }) }, { requiredKeys: [] }), fc.jsonValue()),
        { maxKeys: 3 },
      ),
      fc.jsonValue(),
    ),
  },
  { requiredKeys: [] },
)

const texts = (values: fc.Arbitrary<unknown>) =>
  fc.oneof(
    values.map((v) => JSON.stringify(v)),
    values.map((v) => JSON.stringify(v, null, 2)).chain((t) => fc.nat({ max: t.length }).map((cut) => t.slice(0, cut))),
    fc.string(),
  )

/** Each line is one human line without Effect's words; `input` may hold such words itself, and a message may quote it. */
const expectHumanLines = (lines: ReadonlyArray<string>, input: string) => {
  expect(lines.length).toBeGreaterThan(0)
  for (const line of lines) {
    expect(line).not.toMatch(/[\r\n]/)
    expect(line.trim()).not.toBe("")
    for (const internal of effectInternals) if (!input.includes(internal)) expect(line).not.toContain(internal)
  }
}

describe("no message holds Effect's internal words or a line break (property)", () => {
  it("bad manifests", () => {
    fc.assert(
      fc.property(texts(nearManifest), (text) => {
        const result = decodeManifest(text)
        if (Either.isLeft(result)) expectHumanLines(result.left.split("\n"), text)
      }),
      { numRuns: 1000 },
    )
  })

  it("bad locks", () => {
    fc.assert(
      fc.property(texts(nearLock), (text) => {
        const result = decodeLockFile(text)
        if (Either.isLeft(result)) expectHumanLines(result.left.split("\n"), text)
      }),
      { numRuns: 1000 },
    )
  })
})

describe("any Effect schema (a plugin's own input, output and config schemas)", () => {
  class Person extends Schema.Class<Person>("Person")({ name: Schema.String, age: Schema.optionalWith(Schema.Int, { exact: true }) }) {}
  enum Colour {
    Red = "red",
    Blue = "blue",
  }
  const Input = Schema.Struct({
    mode: Schema.Literal("fast", "safe"),
    pair: Schema.Tuple(Schema.String, Schema.Number),
    person: Person,
    colour: Schema.Enums(Colour),
    tags: Schema.Record({ key: Schema.String, value: Schema.Number }),
    when: Schema.optional(Schema.NullOr(Schema.Number)),
  })
  const problems = (value: unknown) =>
    Either.getOrThrow(Either.flip(Schema.decodeUnknownEither(Input, { errors: "all", onExcessProperty: "error" })(value).pipe(Either.mapLeft(formatSchemaProblems))))

  it("literals, tuples, classes, enums, records and nullable optionals, in words", () => {
    expect(problems({ mode: "slow", pair: ["a", 1, 2], person: { name: 1 }, colour: "green", tags: { a: "x" }, when: "now" })).toEqual([
      `mode: expected "fast" or "safe", got "slow"`,
      "pair[2]: not allowed here",
      "person.name: expected a string, got 1",
      `colour: expected "red" or "blue", got "green"`,
      `tags.a: expected a number, got "x"`,
      `when: expected a number or null, got "now"`,
    ])
    expect(problems({})).toEqual([
      `mode: missing; expected "fast" or "safe"`,
      "pair: missing; expected a JSON array",
      "person: missing; expected a JSON object",
      `colour: missing; expected "red" or "blue"`,
      "tags: missing; expected a JSON object",
    ])
  })

  it("never shows Effect's internal words, for arbitrary values (property)", () => {
    fc.assert(
      fc.property(fc.anything(), (value) => {
        const result = Schema.decodeUnknownEither(Input, { errors: "all", onExcessProperty: "error" })(value)
        if (Either.isLeft(result)) expectHumanLines(formatSchemaProblems(result.left), fc.stringify(value))
      }),
      { numRuns: 500 },
    )
  })
})
