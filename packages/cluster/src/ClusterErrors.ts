import { Schema } from "effect"

/*
 * What can stop a cluster runner or client from starting. Every message names
 * what is wrong, where, and what to do, in one line.
 */

/**
 * A runner whose verified plugins differ from those of the runners already in
 * the cluster: it refuses to join, so that no job runs on other code than the
 * cluster's. Digests are SHA-256 over each plugin's id and tree digest.
 */
export class ClusterLockMismatch extends Schema.TaggedError<ClusterLockMismatch>()("ClusterLockMismatch", {
  clusterDigest: Schema.String,
  runnerDigest: Schema.String,
  runners: Schema.Array(Schema.String),
}) {
  override get message() {
    return `this runner's plugins (lock digest ${this.runnerDigest}) differ from the cluster's (${this.clusterDigest}, on ${this.runners.join(", ")}); it did not join: start it with the same plugin root and PLUGINS.lock as the running runners, or stop them all before changing the plugins`
  }
}

/** The cluster's database could not be reached or prepared. */
export class ClusterDatabaseUnavailable extends Schema.TaggedError<ClusterDatabaseUnavailable>()("ClusterDatabaseUnavailable", {
  database: Schema.String,
  detail: Schema.String,
}) {
  override get message() {
    return `the cluster database ${this.database} is not usable (${this.detail}): check that Postgres runs there and the URL is right`
  }
}
