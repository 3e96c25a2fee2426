import { describe, expect, it } from "vitest"
import { Option } from "effect"
import { parseChildren, parseCpuMillis, parseRssBytes, sampleProcess, workerProcessOf } from "../src/instance/ProcessStats.js"

const status = `Name:\tnode
Umask:\t0022
State:\tS (sleeping)
VmPeak:\t 1200000 kB
VmHWM:\t   90000 kB
VmRSS:\t   81234 kB
RssAnon:\t   40000 kB
Threads:\t11
`

describe("reading a process's use from /proc", () => {
  it("takes VmRSS (not the peak or a part of it) in bytes, and nothing when there is none", () => {
    expect(parseRssBytes(status)).toBe(81234 * 1024)
    expect(parseRssBytes("Name:\tkthreadd\nState:\tS (sleeping)\n")).toBeUndefined()
  })

  it("adds utime and stime, in ms, counting fields after the last ')' of a command name holding spaces and parentheses", () => {
    // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime …
    const stat = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 75 9 9 20 0 11 0 100 1000000 2000 18446744073709551615\n"
    expect(parseCpuMillis(stat)).toBe(3250)
    expect(parseCpuMillis(stat, 250)).toBe(1300)
    expect(parseCpuMillis("garbage")).toBeUndefined()
    expect(parseCpuMillis("1 (x) S 1 2")).toBeUndefined()
  })

  it("reads the children list", () => {
    expect(parseChildren("123 456 \n")).toEqual([123, 456])
    expect(parseChildren("")).toEqual([])
  })

  it("samples a live process: this one", () => {
    const sample = Option.getOrThrow(sampleProcess(process.pid))
    expect(sample.pid).toBe(process.pid)
    expect(sample.rssBytes).toBeGreaterThan(10 * 1024 * 1024)
    expect(sample.cpuMillis).toBeGreaterThan(0)
    expect(workerProcessOf(process.pid)).toBe(process.pid)
  })

  it("has no sample of a process that does not exist", () => {
    expect(Option.isNone(sampleProcess(2 ** 22 + 12345))).toBe(true)
  })
})
