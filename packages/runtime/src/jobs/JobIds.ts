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

const body = (now: number): string => {
  let time = ""
  let t = Math.max(0, Math.floor(now))
  for (let i = 0; i < 10; i++) {
    time = alphabet[t % 32]! + time
    t = Math.floor(t / 32)
  }
  if (used + 16 > pool.length) {
    crypto.getRandomValues(pool)
    used = 0
  }
  let tail = ""
  for (let i = 0; i < 16; i++) tail += alphabet[pool[used++]! & 31]!
  return time + tail
}

// The pattern was checked once for the alphabet; each id is made, not validated again.
export const newJobId = (now: number): JobId => `job-${body(now)}` as JobId
export const newSequenceId = (now: number): SequenceId => SequenceId.make(`seq-${body(now)}`)
