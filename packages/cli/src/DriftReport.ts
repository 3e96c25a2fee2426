import { describeDifference } from "@plinth/domain"
import type { DeclarationCheckOutcome } from "@plinth/runtime"
import { plainPalette, type Palette } from "./Colour.js"
import { oneLine } from "./Render.js"

/*
 * `plinth plugins describe --check`: each plugin's manifest against what its
 * verified code declares, for people (one line per plugin, its differences
 * indented under it) and for programs (`--json`).
 */

const fix = "run 'plinth plugins describe <id> --write', review plugin.json, then 'plinth plugins lock'"

export const renderDeclarationCheck = (outcome: DeclarationCheckOutcome, lockPath: string, palette: Palette = plainPalette): string => {
  const width = Math.max(0, ...outcome.plugins.map((plugin) => oneLine(plugin.id).length))
  const lines: Array<string> = []
  for (const plugin of outcome.plugins) {
    const id = oneLine(plugin.id).padEnd(width)
    if (plugin.differences.length === 0) {
      lines.push(`${palette.ok("ok")}     ${id}  plugin.json matches its code`)
      continue
    }
    lines.push(`${palette.bad("stale")}  ${id}  plugin.json differs from its code:`)
    for (const difference of plugin.differences) lines.push(`         ${oneLine(describeDifference(difference))}`)
  }
  const stale = outcome.plugins.filter((plugin) => plugin.differences.length > 0).length
  const checked = `${outcome.plugins.length} plugin${outcome.plugins.length === 1 ? "" : "s"} verified against ${oneLine(lockPath)} and loaded`
  lines.push(stale === 0 ? `${checked}: every manifest matches its code` : `${checked}: ${stale} stale; ${fix}`)
  return lines.join("\n")
}

export const declarationCheckJson = (outcome: DeclarationCheckOutcome) => ({
  ok: outcome.upToDate,
  upToDate: outcome.upToDate,
  plugins: outcome.plugins.map((plugin) => ({
    id: plugin.id,
    upToDate: plugin.differences.length === 0,
    differences: plugin.differences.map((difference) => ({ ...difference, text: describeDifference(difference) })),
  })),
})

/** The failure line once the report is printed: which manifests are stale and what to do. */
export const renderManifestsStale = (plugins: ReadonlyArray<string>, palette: Palette = plainPalette): string =>
  `${palette.bad("stale")}: the manifest of ${plugins.map((id) => `'${oneLine(id)}'`).join(", ")} differs from its code; ${fix}`
