import { JobId, SequenceId } from "@plinth/domain"

/*
 * Job and sequence ids: 10 characters of time (milliseconds, base32, so ids
 * sort by creation) and 16 random ones, in a lower-case base32 alphabet
 * without i, l, o and u.
 */

const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"

const body = (now: number): string => {
  let time = ""
  let t = Math.max(0, Math.floor(now))
  for (let i = 0; i < 10; i++) {
    time = alphabet[t % 32]! + time
    t = Math.floor(t / 32)
  }
  const random = crypto.getRandomValues(new Uint8Array(16))
  let tail = ""
  for (const byte of random) tail += alphabet[byte % 32]!
  return time + tail
}

export const newJobId = (now: number): JobId => JobId.make(`job-${body(now)}`)
export const newSequenceId = (now: number): SequenceId => SequenceId.make(`seq-${body(now)}`)
