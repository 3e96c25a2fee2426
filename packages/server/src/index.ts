export * from "./Assets.js"
