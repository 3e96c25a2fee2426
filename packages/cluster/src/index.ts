export * from "./ClusterErrors.js"
export * from "./ClusterLayer.js"
export { codeDigest, STALE_AFTER_MILLIS } from "./storage/Membership.js"
export { JobEntity } from "./protocol/JobEntity.js"
