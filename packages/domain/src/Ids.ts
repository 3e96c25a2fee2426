import { Schema } from "effect"

/** A plugin id: a lower-case slug of 1–64 characters; it must equal the plugin's folder name. */
export const PluginId = Schema.String.pipe(
  Schema.pattern(/^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/, {
    message: () => "a plugin id is a lower-case slug of 1-64 characters: a-z, 0-9 and inner '-'",
  }),
  Schema.brand("PluginId"),
).annotations({ description: "a plugin id: 1-64 characters of a-z, 0-9 and inner '-'" })
export type PluginId = typeof PluginId.Type

/** Lower-case hex SHA-256 of one file's bytes. */
export const Sha256Hex = Schema.String.pipe(
  Schema.pattern(/^[0-9a-f]{64}$/, { message: () => "expected 64 lower-case hex digits (a SHA-256)" }),
  Schema.brand("Sha256Hex"),
).annotations({ description: "a SHA-256: 64 lower-case hex digits" })
export type Sha256Hex = typeof Sha256Hex.Type

/** A tree digest in Go's dirhash form: `h1:` + padded base64 of a SHA-256 (44 characters). */
export const Digest = Schema.String.pipe(
  Schema.pattern(/^h1:[A-Za-z0-9+/]{43}=$/, { message: () => "expected a tree digest 'h1:<base64 sha256>'" }),
  Schema.brand("Digest"),
).annotations({ description: "a tree digest like h1:<base64 of a SHA-256>" })
export type Digest = typeof Digest.Type

/** One running instance of a plugin (one worker process). */
export const InstanceId = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(128), Schema.brand("InstanceId"))
export type InstanceId = typeof InstanceId.Type
