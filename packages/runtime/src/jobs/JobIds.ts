import { SequenceId, type JobId } from "@plinth/domain"

/*
 * Job and sequence ids: 10 characters of time (milliseconds, base32, so ids
 * sort by creation) and 16 random ones, in a lower-case base32 alphabet
 * without i, l, o and u. Random bytes are drawn 4 KiB at a time: a busy queue
 * makes thousands of ids a second.
 */

const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
const pool = new Uint8Array(4096)
let used = pool.length

// A millisecond's time part is made once: ids made in the same millisecond share it.
let lastMillis = -1
let lastTime = ""
const codes = Array.from(alphabet, (c) => c.charCodeAt(0))
const tailCodes = new Array<number>(16)

const timePart = (millis: number): string => {
  if (millis === lastMillis) return lastTime
  let time = ""
  let t = millis
  for (let i = 0; i < 10; i++) {
    time = alphabet[t % 32]! + time
    t = Math.floor(t / 32)
  }
  lastMillis = millis
  lastTime = time
  return time
}

const body = (now: number): string => {
  const time = timePart(Math.max(0, Math.floor(now)))
  if (used + 16 > pool.length) {
    crypto.getRandomValues(pool)
    used = 0
  }
  // One string from the 16 characters, not 16 concatenations.
  for (let i = 0; i < 16; i++) tailCodes[i] = codes[pool[used++]! & 31]!
  return time + String.fromCharCode(...tailCodes)
}

// The pattern was checked once for the alphabet; each id is made, not validated again.
export const newJobId = (now: number): JobId => `job-${body(now)}` as JobId
export const newSequenceId = (now: number): SequenceId => SequenceId.make(`seq-${body(now)}`)
