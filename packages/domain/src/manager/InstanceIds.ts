/*
 * Instance ids the PluginManager accepts from callers. They name workers in
 * events, traces and (later) stores and file names, so the alphabet is small
 * and has nothing a path, a shell or a log line would read specially.
 */

export const INSTANCE_ID_PATTERN = /^[a-z0-9_-]{1,64}$/

/** Why `value` cannot be an instance id, or undefined when it can. */
export const instanceIdProblem = (value: unknown): string | undefined => {
  if (typeof value !== "string") return `an instance id is a string, not ${value === null ? "null" : typeof value}`
  if (value.length === 0) return "an instance id cannot be empty"
  if (value.length > 64) return `an instance id has at most 64 characters, this one has ${value.length}`
  if (!INSTANCE_ID_PATTERN.test(value)) return "an instance id uses only a-z, 0-9, '_' and '-'"
  return undefined
}

/** A value as it can be shown in a one-line message: quoted, control characters escaped, cut short. */
export const printableValue = (value: unknown): string => {
  let text: string
  try {
    text = typeof value === "string" ? JSON.stringify(value) : (JSON.stringify(value) ?? String(value))
  } catch {
    text = String(value)
  }
  return text.length > 80 ? `${text.slice(0, 80)}…` : text
}

/** The id of a fresh instance: the plugin id, '-', and six lower-case hex digits (the caller draws them). */
export const freshInstanceId = (plugin: string, random: Uint8Array): string =>
  `${plugin}-${Array.from(random.subarray(0, 3), (byte) => byte.toString(16).padStart(2, "0")).join("")}`
