import { Args, Command } from "@effect/cli"
import { Effect, Option } from "effect"
import { summarizeAggregate, type AggregateSummary } from "@plinth/domain"
import { EmpiricalStore, type EmpiricalRecord } from "@plinth/runtime"
import type { Palette } from "../Colour.js"
import * as Common from "../CommonOptions.js"
import { formatOf, report, reportFailures } from "../Output.js"
import { printable } from "../Render.js"
import { databaseExists, storesIn } from "./PluginState.js"

const id = Args.text({ name: "id" }).pipe(Args.withDescription("Only this plugin's records."), Args.optional)

export interface StatsRow extends AggregateSummary {
  readonly plugin: string
  readonly pluginDigest: string
  readonly configHash: string
  /** When the last samples were folded in, ISO 8601. */
  readonly updatedAt: string
}

const rowOf = (record: EmpiricalRecord): StatsRow => ({
  plugin: record.plugin,
  pluginDigest: record.pluginDigest,
  configHash: record.configHash,
  ...summarizeAggregate(record.aggregate),
  updatedAt: new Date(record.updatedAt).toISOString(),
})

const ms = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(1))
const mib = (bytes: number) => (bytes / (1024 * 1024)).toFixed(1)

const renderStats = (rows: ReadonlyArray<StatsRow>, palette: Palette): string => {
  if (rows.length === 0) return "no resource use recorded yet: every 'plinth plugins invoke' and every PluginManager call records its cost"
  const table = [
    ["plugin", "digest", "config", "calls", "ok", "wall ms (mean ± sd, max)", "cpu ms (mean)", "peak RSS MiB (mean, max)"],
    ...rows.map((r) => [
      printable(r.plugin),
      r.pluginDigest.replace(/^([a-z0-9]+:)?(.{12}).*$/, "$1$2…"),
      r.configHash.slice(0, 12),
      String(r.calls),
      `${(r.successRate * 100).toFixed(1)}%`,
      r.wallMs.samples === 0 ? "-" : `${ms(r.wallMs.mean)} ± ${ms(r.wallMs.stdDev)}, ${ms(r.wallMs.max)}`,
      r.cpuMs.samples === 0 ? "-" : ms(r.cpuMs.mean),
      r.peakRssBytes.samples === 0 ? "-" : `${mib(r.peakRssBytes.mean)}, ${mib(r.peakRssBytes.max)}`,
    ]),
  ]
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)))
  return table
    .map((row, n) => {
      const line = row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ")
      return n === 0 ? palette.dim(line) : line
    })
    .join("\n")
}

/**
 * `plinth plugins stats [<id>]`: what the plugins' calls have cost, from the
 * EmpiricalStore under --data-dir: one record per plugin, plugin digest and
 * config hash. Runs no plugin code and needs no plugin folder: a record
 * outlives the plugin version it measured.
 */
export const stats = Command.make("stats", { id, dataDir: Common.dataDir, json: Common.json }, (options) => {
  const format = formatOf(options)
  const records = databaseExists(options.dataDir)
    ? Effect.flatMap(EmpiricalStore, (store) => store.list(Option.getOrUndefined(options.id))).pipe(Effect.provide(storesIn(options.dataDir)))
    : Effect.succeed([])
  return Effect.flatMap(records, (found) => report(format, found.map(rowOf), renderStats, (rows) => ({ ok: true, records: rows }))).pipe(
    reportFailures(format),
  )
}).pipe(Command.withDescription("Show what each plugin's calls have cost: calls, success rate, wall and CPU time, peak memory. Runs no plugin code."))
