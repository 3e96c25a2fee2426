import { rmSync } from "node:fs"
import { join } from "node:path"
import type { Browser, Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { launchChromium, post, startServe, type Serve } from "../scripts/dashboard-browser.mjs"
import { examplesWorkspace, plinth } from "./support/cli.js"
import { writePlugin } from "./support/plugins.js"

/*
 * The dashboard in a real browser (headless Chromium, the Debian package)
 * against a real `plinth serve` over a copy of the examples: jobs submitted
 * through the API show up live, run with their progress bar moving, are
 * cancelled from the page, and whatever a plugin writes shows as text.
 */

/** Markup that would run (or at least fetch `x`) if the page ever parsed plugin text as HTML. */
const MARKUP = `<img src=x onerror="globalThis.pwned=1"><b>bold</b>`

/** A plugin that echoes its text as a status message, to stdout, stderr and its result, or fails with it as its message. */
const markupPlugin = `
import { Effect, Schema } from "effect"
import { definePlugin, PluginInputError } from "@plinth/domain"
export default definePlugin({
  config: Schema.Struct({}),
  actions: ({ action }) => ({
    echo: action({
      description: "Reports its text as a progress message, writes it to stdout and stderr, and returns it.",
      input: Schema.Struct({ text: Schema.String }),
      output: Schema.Struct({ text: Schema.String }),
      handler: ({ text }, { progress }) =>
        Effect.zipRight(progress(0.5, text), Effect.sync(() => { console.log(text); console.error(text); return { text } })),
    }),
    refuse: action({
      description: "Fails with its text as the message.",
      input: Schema.Struct({ text: Schema.String }),
      output: Schema.Struct({}),
      handler: ({ text }) => Effect.fail(new PluginInputError({ message: text })),
    }),
  }),
})
`

/*
 * Records, from the page's first moment, every job row the page shows
 * (which table it went into) and every value a progress bar took, so the
 * test sees transitions however briefly each lasted. Installed through the
 * DevTools protocol, not the page, so the page's CSP does not apply to it.
 */
const recorder = `
globalThis.__seen = []
globalThis.__progress = []
new MutationObserver((mutations) => {
  for (const m of mutations) {
    if (m.type === "attributes") {
      const row = m.target.closest && m.target.closest("tr[data-job-id]")
      if (row && m.target.localName === "progress" && m.target.hasAttribute("value")) globalThis.__progress.push({ job: row.dataset.jobId, value: Number(m.target.getAttribute("value")) })
      continue
    }
    for (const node of m.addedNodes) {
      if (node.nodeType === 1 && node.matches("tr[data-job-id]")) globalThis.__seen.push({ job: node.dataset.jobId, table: node.parentElement && node.parentElement.id })
    }
  }
}).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ["value"] })
`

let dir: string | undefined
let server: Serve | undefined
let browser: Browser | undefined
let page: Page
/** The markup plugin's echo job, run by one test and read by the next. */
let echoed = ""
const consoleErrors: Array<string> = []
const pageErrors: Array<string> = []
const dialogs: Array<string> = []

const evaluate = <T>(expression: string): Promise<T> => page.evaluate(expression) as Promise<T>

/** The tables a job's row has been seen in, in order, without repeats. */
const tablesOf = async (job: string): Promise<Array<string>> => {
  const seen = await evaluate<Array<{ job: string; table: string }>>("globalThis.__seen")
  return seen.filter((s) => s.job === job).map((s) => s.table).filter((table, i, all) => i === 0 || all[i - 1] !== table)
}

const submit = async (instance: string, action: string, input: unknown, priority?: number): Promise<string> => {
  const answer = await post(server!, "/api/jobs", { instance, action, input, ...(priority === undefined ? {} : { priority }) })
  expect(answer.status, JSON.stringify(answer.body)).toBe(201)
  return answer.body.id as string
}

const row = (table: "pending" | "running" | "history", job: string) => page.locator(`#${table} tr[data-job-id="${job}"]`)

beforeAll(async () => {
  // First, so that a machine without Chromium fails here, at once, saying what to install.
  browser = await launchChromium()
  dir = examplesWorkspace("plinth-dashboard-")
  writePlugin(join(dir, "plugins"), { id: "markup", files: { "index.js": markupPlugin } })
  // Its manifest states what its code declares, as an author's would.
  const described = await plinth(dir, ["plugins", "describe", "markup", "--write"])
  expect(described.code, described.stderr).toBe(0)
  const locked = await plinth(dir, ["plugins", "lock"])
  expect(locked.code, locked.stderr).toBe(0)
  server = await startServe({ cwd: dir, dataDir: join(dir, "data") })
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } })
  page.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warning") consoleErrors.push(`${message.type()}: ${message.text()}`)
  })
  page.on("pageerror", (error) => pageErrors.push(error.message))
  page.on("dialog", (dialog) => {
    dialogs.push(dialog.message())
    void dialog.dismiss()
  })
  await page.addInitScript(recorder)
  await page.goto(`${server.url}/#token=${encodeURIComponent(server.token)}`)
  await page.locator('#connection[data-state="live"]').waitFor()
}, 90_000)

afterAll(async () => {
  await browser?.close()
  await server?.stop()
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
}, 30_000)

describe("the dashboard in Chromium", () => {
  it("takes the token out of the address and shows the verified plugins and their instances", async () => {
    expect(page.url()).not.toContain("token")
    expect(await evaluate<string | null>(`sessionStorage.getItem("plinth.token")`)).toBe(server!.token)
    await expect.poll(() => page.locator("#plugins tr").count()).toBe(7)
    expect(await page.locator('#plugins tr[data-plugin-id="showcase"]').innerText()).toMatch(/showcase\s+1\.0\.0\s+.*verified/s)
    await expect.poll(() => page.locator('#instances tr[data-instance-id="showcase"]').count()).toBe(1)
  })

  it("shows a job go pending → running → completed, its progress bar moving, then its result", { timeout: 60_000 }, async () => {
    // One job runs at a time by default: the first holds the queue, so the second is seen waiting.
    const first = await submit("showcase", "slow", { millis: 1500 })
    const job = await submit("showcase", "slow", { millis: 3000 })
    await row("history", job).waitFor({ timeout: 30_000 })
    await expect.poll(() => row("history", job).locator(".badge").innerText()).toBe("completed")
    expect(await tablesOf(job)).toEqual(["pending", "running", "history"])
    const values = (await evaluate<Array<{ job: string; value: number }>>("globalThis.__progress")).filter((p) => p.job === job).map((p) => p.value)
    // The plugin reports every tenth: the bar showed several of them, in order.
    expect(new Set(values.filter((v) => v > 0 && v < 1)).size).toBeGreaterThanOrEqual(3)
    expect(values).toEqual([...values].sort((a, b) => a - b))
    expect(await row("history", first).locator(".badge").innerText()).toBe("completed")

    await row("history", job).click()
    await expect.poll(() => page.locator("#detail-title").innerText()).toBe(job)
    await expect.poll(() => page.locator("#detail pre.result").innerText()).toContain('"waitedMillis": 3000')
  })

  it("cancels a running job and a pending one from the page, and reorders a pending one", { timeout: 60_000 }, async () => {
    const running = await submit("showcase", "slow", { millis: 60_000 })
    await row("running", running).waitFor({ timeout: 30_000 })
    const later = await submit("showcase", "greet", { name: "later" })
    const sooner = await submit("showcase", "greet", { name: "sooner" })
    const dropped = await submit("showcase", "greet", { name: "dropped" })
    await row("pending", dropped).waitFor()
    expect(await page.locator("#pending tr").evaluateAll((rows) => rows.map((r) => (r as unknown as { dataset: { jobId: string } }).dataset.jobId))).toEqual([
      later,
      sooner,
      dropped,
    ])

    // Reorder: a higher priority moves the job to the front of the pending list.
    await row("pending", sooner).locator("input.priority-input").fill("5")
    await row("pending", sooner).locator("button.reorder").click()
    await expect
      .poll(() => page.locator("#pending tr").evaluateAll((rows) => rows.map((r) => (r as unknown as { dataset: { jobId: string } }).dataset.jobId)))
      .toEqual([sooner, later, dropped])

    await row("pending", dropped).locator("button.cancel").click()
    await row("history", dropped).waitFor()
    expect(await row("history", dropped).locator(".badge").innerText()).toBe("cancelled")

    await row("running", running).locator("button.cancel").click()
    await row("history", running).waitFor({ timeout: 15_000 })
    await expect.poll(() => row("history", running).locator(".badge").innerText()).toBe("cancelled")
    // (It may have shown as pending for a moment before it started: only the end is certain.)
    expect((await tablesOf(running)).slice(-2)).toEqual(["running", "history"])
    expect(await tablesOf(dropped)).toEqual(["pending", "history"])

    // The reordered job ran before the one submitted ahead of it.
    await row("history", later).waitFor({ timeout: 15_000 })
    const history = await page.locator("#history tr").evaluateAll((rows) => rows.map((r) => (r as unknown as { dataset: { jobId: string } }).dataset.jobId))
    expect(history.indexOf(later)).toBeLessThan(history.indexOf(sooner))
  })

  it("shows markup from a plugin's input, result, error and status message as text, and runs none of it", { timeout: 60_000 }, async () => {
    echoed = await submit("markup", "echo", { text: MARKUP })
    const refused = await submit("markup", "refuse", { text: MARKUP })
    await row("history", refused).waitFor({ timeout: 30_000 })
    expect(await row("history", refused).locator(".badge").innerText()).toBe("failed")
    // The error comes with the re-fetch that follows the state change.
    await expect.poll(() => row("history", refused).locator("td.error").innerText()).toContain(MARKUP)

    await row("history", echoed).click()
    await expect.poll(() => page.locator("#detail pre.result").innerText()).toContain(JSON.stringify(MARKUP).slice(1, -1))
    expect(await page.locator("#detail pre.input").innerText()).toContain(JSON.stringify(MARKUP).slice(1, -1))
    // The status message went through the live feed.
    expect(await page.locator("#events li .what").allInnerTexts()).toContain(`progress 50%: ${MARKUP}`)

    await row("history", refused).click()
    await expect.poll(() => page.locator("#detail .error-message").innerText()).toContain(MARKUP)

    // Nothing was parsed as HTML: no image, no bold text, nothing ran.
    expect(await evaluate<number>(`document.querySelectorAll("main img, main b").length`)).toBe(0)
    expect(await evaluate<unknown>("globalThis.pwned")).toBeUndefined()
  })

  it("shows the lines a job's worker wrote, stdout and stderr, as text", { timeout: 60_000 }, async () => {
    await row("history", echoed).click()
    await expect.poll(() => page.locator('#detail .log li[data-stream="stdout"] .line').allInnerTexts()).toContain(MARKUP)
    expect(await page.locator('#detail .log li[data-stream="stderr"] .line').allInnerTexts()).toContain(MARKUP)
    expect(await evaluate<number>(`document.querySelectorAll("main img, main b").length`)).toBe(0)
  })

  it("without a token, asks for it in the page before acting, and says so plainly when the server refuses one", { timeout: 60_000 }, async () => {
    const blocker = await submit("showcase", "slow", { millis: 60_000 })
    const waiting = await submit("showcase", "greet", { name: "waiting" })
    // A fresh context: no token in this tab's sessionStorage, none in the address.
    const context = await browser!.newContext()
    const bare = await context.newPage()
    const bareErrors: Array<string> = []
    bare.on("console", (message) => {
      if (message.type() === "error") bareErrors.push(message.text())
    })
    bare.on("pageerror", (error) => bareErrors.push(error.message))
    bare.on("dialog", (dialog) => {
      bareErrors.push(`dialog: ${dialog.message()}`)
      void dialog.dismiss()
    })
    try {
      await bare.goto(`${server!.url}/`)
      const pendingRow = bare.locator(`#pending tr[data-job-id="${waiting}"]`)
      await pendingRow.waitFor()
      expect(await bare.locator("#token-panel").isVisible()).toBe(false)

      await pendingRow.locator("button.cancel").click()
      await bare.locator("#token-panel").waitFor()
      await bare.locator("#token-input").fill("not-the-token")
      await bare.locator('#token-form button[type="submit"]').click()
      await expect.poll(() => bare.locator("#notice").innerText()).toContain("refused the token (401 Unauthorized)")
      // Still pending, and the form asks again.
      expect(await bare.locator("#token-panel").isVisible()).toBe(true)
      expect((await post(server!, "/api/jobs/" + waiting + "/priority", { priority: 0 })).body).toEqual({ reordered: true })

      await bare.locator("#token-input").fill(server!.token)
      await bare.locator('#token-form button[type="submit"]').click()
      await bare.locator(`#history tr[data-job-id="${waiting}"]`).waitFor()
      expect(await bare.locator(`#history tr[data-job-id="${waiting}"] .badge`).innerText()).toBe("cancelled")
      // The one error: the browser's own report of the refused request.
      expect(bareErrors).toEqual([expect.stringContaining("401")])
    } finally {
      await context.close()
      await post(server!, "/api/jobs/" + blocker + "/cancel", {})
    }
    await row("history", blocker).waitFor({ timeout: 15_000 })
  })

  it("logged no console error and threw no page error along the way", () => {
    expect(pageErrors).toEqual([])
    expect(consoleErrors).toEqual([])
    expect(dialogs).toEqual([])
  })
})
