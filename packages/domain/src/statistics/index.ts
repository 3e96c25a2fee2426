export * from "./Moments.js"
export * from "./Aggregate.js"
