import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { droppedNotice, makeLineCapture, type OutputLimits, type WorkerOutputLine } from "../src/instance/OutputLines.js"

const capture = (limits?: Partial<OutputLimits>, clock = { now: 0 }) => {
  const lines: Array<WorkerOutputLine> = []
  const c = makeLineCapture(42, (line) => void lines.push(line), { maxLineChars: 8192, linesPerSecond: 1000, burst: 2000, ...limits }, () => clock.now)
  return { c, lines, clock }
}

describe("worker output as lines", () => {
  it("splits on newlines across chunks, keeps each stream apart, ends an unterminated last line at the stream's end", () => {
    const { c, lines } = capture()
    c.stdout.push("hel")
    c.stderr.push("oops\n")
    c.stdout.push("lo\nwor")
    c.stdout.push("ld")
    c.stdout.end()
    expect(lines.map((l) => [l.stream, l.line])).toEqual([
      ["stderr", "oops"],
      ["stdout", "hello"],
      ["stdout", "world"],
    ])
    expect(lines.every((l) => l.pid === 42 && l.cut === undefined)).toBe(true)
  })

  it("removes terminal control sequences and the carriage return of CRLF", () => {
    const { c, lines } = capture()
    c.stdout.push("\u001b[31mred\u001b[39m text\r\n\u001b]0;title\u0007plain\n")
    expect(lines.map((l) => l.line)).toEqual(["red text", "plain"])
  })

  it("keeps the start of an over-long line, marked as cut, and skips the rest of it whatever the chunks", () => {
    const { c, lines } = capture({ maxLineChars: 10 })
    c.stdout.push("0123456789abc")
    c.stdout.push("defghij")
    c.stdout.push("klm\nnext\n")
    c.stdout.push("x".repeat(25) + "\nlast\n")
    expect(lines.map((l) => [l.line, l.cut ?? false])).toEqual([
      ["0123456789", true],
      ["next", false],
      ["xxxxxxxxxx", true],
      ["last", false],
    ])
  })

  it("drops lines past the rate, counts them, and reports the count when lines are kept again and at the end", () => {
    const { c, lines, clock } = capture({ linesPerSecond: 10, burst: 5 })
    c.stdout.push("a\n".repeat(8))
    expect(lines).toHaveLength(5)
    expect(c.droppedLines()).toBe(3)
    clock.now += 1000 // ten more tokens, five kept at most
    c.stdout.push("b\n")
    expect(lines.slice(5).map((l) => l.line)).toEqual([droppedNotice(3), "b"])
    c.stderr.push("c\n".repeat(10))
    c.close()
    expect(lines.at(-1)!.line).toBe(droppedNotice(6)) // four of the ten fit the bucket b left
    expect(c.droppedLines()).toBe(9)
  })

  it("holds no more than one line's cap however much is written without a newline", () => {
    const { c, lines } = capture({ maxLineChars: 100 })
    for (let i = 0; i < 1000; i++) c.stdout.push("y".repeat(1000))
    c.stdout.push("\n")
    c.stdout.end()
    expect(lines).toHaveLength(1)
    expect(lines[0]!.line).toHaveLength(100)
  })

  it("yields the same lines however the text is cut into chunks (under the caps)", () => {
    fc.assert(
      fc.property(fc.array(fc.stringMatching(/^[a-z ]{0,20}$/), { maxLength: 30 }), fc.array(fc.nat(50)), (texts, cuts) => {
        const text = texts.join("\n")
        const { c, lines } = capture()
        let at = 0
        for (const cut of cuts) {
          c.stdout.push(text.slice(at, at + cut))
          at += cut
        }
        c.stdout.push(text.slice(at))
        c.stdout.end()
        const expected = texts.length === 0 ? [] : texts[texts.length - 1] === "" ? texts.slice(0, -1) : texts
        expect(lines.map((l) => l.line)).toEqual(expected)
      }),
    )
  })
})
