import { describe, expect, it } from "vitest"
import { makeProgressDisplay, PROGRESS_REDRAW_MS, renderProgressLine, showsProgress } from "../src/Progress.js"

const MiB = 1024 * 1024

describe("the progress line", () => {
  it("shows files hashed of those known, the share, and the rate in MiB/s", () => {
    expect(renderProgressLine({ filesHashed: 12_345, filesTotal: 20_000, bytesHashed: 96 * MiB }, 2000)).toBe(
      "hashing 12,345/20,000 files (61%)  48.0 MiB/s",
    )
    expect(renderProgressLine({ filesHashed: 0, filesTotal: 0, bytesHashed: 0 }, 0)).toBe("hashing 0/0 files (0%)")
  })
})

describe("the display", () => {
  const snapshot = (filesHashed: number) => ({ filesHashed, filesTotal: 100, bytesHashed: filesHashed * MiB })

  it("draws at once, then at most once per interval, each time over the same line; clear erases it", () => {
    let clock = 0
    const written: Array<string> = []
    const display = makeProgressDisplay((text) => written.push(text), () => clock)
    display.update(snapshot(1))
    clock += PROGRESS_REDRAW_MS / 2
    display.update(snapshot(2))
    clock += PROGRESS_REDRAW_MS / 2
    display.update(snapshot(3))
    for (let i = 0; i < 50; i++) {
      clock += 1
      display.update(snapshot(4 + i))
    }
    expect(written).toHaveLength(2)
    expect(written[0]).toBe("\r\u001b[Khashing 1/100 files (1%)")
    expect(written[1]).toMatch(/^\r\u001b\[Khashing 3\/100 files \(3%\)  \d+\.\d MiB\/s$/)
    display.clear()
    expect(written.at(-1)).toBe("\r\u001b[K")
    expect(written.every((text) => !text.includes("\n"))).toBe(true)
  })

  it("clear writes nothing when nothing was drawn", () => {
    const written: Array<string> = []
    makeProgressDisplay((text) => written.push(text)).clear()
    expect(written).toEqual([])
  })

  it("is shown only for people at a terminal", () => {
    expect(showsProgress("human", { isTTY: true })).toBe(true)
    expect(showsProgress("human", { isTTY: false })).toBe(false)
    expect(showsProgress("human", {})).toBe(false)
    expect(showsProgress("json", { isTTY: true })).toBe(false)
  })
})
