// Takes docs/dashboard.png: `plinth serve` over a copy of the example plugins,
// a few jobs in every state, one of them selected, in headless Chromium
// launched as the dashboard's browser test launches it.
//
//   npm run build && node scripts/screenshot-dashboard.mjs [out.png]
import { cpSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { launchChromium, post, startServe } from "./dashboard-browser.mjs"

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const out = resolve(process.argv[2] ?? join(repo, "docs/dashboard.png"))
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const dir = mkdtempSync(join(tmpdir(), "plinth-screenshot-"))
cpSync(join(repo, "examples/plugins"), join(dir, "plugins"), { recursive: true })
cpSync(join(repo, "PLUGINS.lock"), join(dir, "PLUGINS.lock"))

const browser = await launchChromium()
const server = await startServe({ cwd: dir, dataDir: join(dir, "data") })
try {
  const submit = async (instance, action, input, priority) => {
    const answer = await post(server, "/api/jobs", { instance, action, input, ...(priority === undefined ? {} : { priority }) })
    if (answer.status !== 201) throw new Error(`submit ${instance} ${action}: ${answer.status} ${JSON.stringify(answer.body)}`)
    return answer.body.id
  }
  const page = await browser.newPage({ viewport: { width: 1440, height: 1360 }, deviceScaleFactor: 1, colorScheme: "light" })
  await page.goto(`${server.url}/#token=${encodeURIComponent(server.token)}`)
  await page.locator('#connection[data-state="live"]').waitFor()

  // History: a few finished jobs, one failed.
  await submit("word-count", "count", { text: "the quick brown fox jumps over the lazy dog" })
  await submit("case-tools", "convert", { text: "plugin host", to: "kebab" })
  await submit("showcase", "fail", { category: "input" })
  await submit("text-tools", "slugify", { text: "Verified plugins, isolated workers" })
  const greeted = await submit("greeter", "greet", { name: "Ada" })
  await page.locator(`#history tr[data-job-id="${greeted}"]`).waitFor({ timeout: 30_000 })
  await sleep(1500)

  // One running with its progress bar part way, and some waiting in priority order.
  const slow = await submit("showcase", "slow", { millis: 20_000 })
  await submit("text-tools", "keywords", { text: "a queue that is durable" }, 0)
  await submit("showcase", "slow", { millis: 2000 }, 10)
  await submit("greeter", "greet", { name: "Barbara" }, 5)
  await page.locator(`#running tr[data-job-id="${slow}"] progress[value]`).waitFor({ timeout: 30_000 })
  await page.waitForFunction(
    (id) => Number(document.querySelector(`#running tr[data-job-id="${id}"] progress`)?.getAttribute("value") ?? 0) >= 0.3,
    slow,
    { timeout: 30_000 },
  )
  await page.locator(`#history tr[data-job-id="${greeted}"]`).click()
  await page.locator("#detail pre.result").waitFor()
  await sleep(300)
  await page.screenshot({ path: out, fullPage: false })
  console.log(`wrote ${out}`)
} finally {
  await browser.close()
  await server.stop()
  rmSync(dir, { recursive: true, force: true })
}
