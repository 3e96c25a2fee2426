export * from "./Job.js"
export * from "./JobEvent.js"
export * from "./JobErrors.js"
export * from "./Sequence.js"
