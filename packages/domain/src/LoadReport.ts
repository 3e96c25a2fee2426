import { Schema } from "effect"
import { PluginId } from "./Ids.js"

/** What a successful load did: the plugins loaded in discovery order, and how many folders were walked. */
export const LoadReport = Schema.Struct({
  loaded: Schema.Array(PluginId),
  totalWalked: Schema.Number,
})
export type LoadReport = typeof LoadReport.Type
