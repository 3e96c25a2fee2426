import { Command, Options } from "@effect/cli"
import { Effect } from "effect"
import type { VerificationReport } from "@plinth/domain"
import { gatherReport, writeReportBundle } from "@plinth/runtime"
import { VERSION } from "../Cli.js"
import type { Palette } from "../Colour.js"
import * as Common from "../CommonOptions.js"
import { UsageError } from "../Failures.js"
import { formatOf, report, reportFailures } from "../Output.js"
import { printable } from "../Render.js"

const out = Options.text("out").pipe(
  Options.withPseudoName("dir"),
  Options.withDescription(
    "The folder to write the report to: report.json, REPORT.md, PLUGINS.lock (a copy) and manifests/<id>.json. " +
      "It must be missing or empty. Example: --out review/2026-12-01",
  ),
)

const force = Options.boolean("force").pipe(
  Options.withDescription("Replace a previous report in --out (a folder holding anything else is still refused)."),
)

const renderHuman = (outDir: string) => (r: VerificationReport, palette: Palette) =>
  [
    `${r.ok ? palette.ok("report written") : palette.bad("report written")} to ${printable(outDir)}: ` +
      `${r.summary.plugins} plugins, ${r.summary.verified} verified, ${r.summary.rejected} rejected`,
    ...(r.lock.readable ? [] : [`  ${palette.bad("lock unusable")}: ${printable(r.lock.problem ?? "unknown")}`]),
    ...r.plugins
      .filter((p) => !p.verified && p.rejection !== null)
      .map((p) => {
        const [first = "", ...rest] = p.rejection!.message.split("\n")
        return [`  ${palette.bad("rejected")} ${printable(p.id)} [${p.rejection!._tag}]: ${printable(first)}`, ...rest.map((line) => `    ${printable(line.trim())}`)].join("\n")
      }),
    palette.dim(`see ${printable(outDir)}/REPORT.md`),
  ].join("\n")

/**
 * `plinth plugins report --out DIR`: the evidence of one verification, kept
 * as a folder; runs no plugin code. Exits 4 when any plugin is rejected, with
 * the report written all the same.
 */
export const reportCommand = Command.make(
  "report",
  { out, force, root: Common.root, lock: Common.lock, json: Common.json },
  (options) => {
    const format = formatOf(options)
    return Effect.gen(function* () {
      const gathered = yield* Effect.gen(function* () {
        const gathered = yield* gatherReport({ root: options.root, lock: options.lock, plinthVersion: VERSION })
        yield* writeReportBundle(options.out, gathered, { force: options.force }).pipe(
          Effect.catchTag("ReportOutRefused", (e) => Effect.fail(new UsageError({ message: e.message, command: "plinth plugins report" }))),
        )
        yield* report(format, gathered.report, renderHuman(options.out), (r) => r)
        return gathered
      }).pipe(reportFailures(format))
      // Already reported in full above; the first rejection only decides the exit code (4).
      const [rejection] = gathered.rejections
      if (rejection !== undefined) return yield* Effect.fail(rejection)
    })
  },
).pipe(
  Command.withDescription(
    "Write the evidence of one verification to a folder for reviewers and auditors: the verify result per plugin " +
      "(digests expected and actual, file counts, the reason for a rejection), a copy of the lock, every manifest with its " +
      "actions and schemas, the environment, and a one-page REPORT.md. Runs no plugin code. Exits 4 when any plugin is rejected; " +
      "the report is written all the same.",
  ),
)
