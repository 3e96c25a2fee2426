import { createHash } from "node:crypto"
import { canonicalJson, type Sha256Hex } from "@plinth/domain"

/**
 * The SHA-256 of a config's canonical JSON (keys sorted at every depth), so
 * that `{a:1,b:2}` and `{b:2,a:1}` key one empirical record.
 */
export const configHash = (config: unknown): Sha256Hex =>
  createHash("sha256").update(canonicalJson(config ?? {}), "utf8").digest("hex") as Sha256Hex
