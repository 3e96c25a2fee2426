import { canonicalJson, type Sha256Hex } from "@plinth/domain"
import { sha256Hex } from "./Hashing.js"

/**
 * The SHA-256 of a config's canonical JSON (keys sorted at every depth), so
 * that `{a:1,b:2}` and `{b:2,a:1}` key one empirical record.
 */
export const configHash = (config: unknown): Sha256Hex => sha256Hex(canonicalJson(config ?? {}))
