// The Plinth dashboard: a plain ES module, no framework and no build step.
//
// Everything a plugin or a user supplies (ids, inputs, results, errors, log
// lines, status messages) reaches the page through textContent and
// createElement only, never through innerHTML: markup in that text shows as
// text and never runs.
//
// State comes from the JSON API and is kept live by the server's event
// stream: job events update rows in place at once, and /api/jobs is
// re-fetched (debounced) to pick up what events do not carry (results,
// errors, the server's order) and to repair anything missed.

const TOKEN_KEY = "plinth.token"
const MAX_EVENTS = 200
const MAX_HISTORY = 100
const MAX_LOG_LINES = 1000

/** @type {{ plugins: any[], instances: any[], jobs: Map<string, any>, pending: string[], running: string[], history: string[], stats: any, selected: string | null, detailLogs: any[] | null, detailMissing: boolean }} */
const state = {
  plugins: [],
  instances: [],
  jobs: new Map(),
  pending: [],
  running: [],
  history: [],
  stats: null,
  selected: null,
  detailLogs: null,
  detailMissing: false,
}

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id))

// ---------------------------------------------------------------------------
// DOM building: text only.

/**
 * An element with text or element children. `props` sets properties (className,
 * type, title, …) and `data` sets data-* attributes; never markup.
 */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag)
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue
    if (key === "data") for (const [name, v] of Object.entries(value)) node.dataset[name] = String(v)
    else node[key] = value
  }
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue
    node.append(child instanceof Node ? child : String(child))
  }
  return node
}

function setText(node, text) {
  const value = text === undefined || text === null ? "" : String(text)
  if (node.textContent !== value) node.textContent = value
}

// ---------------------------------------------------------------------------
// Formatting.

const pad = (n) => String(n).padStart(2, "0")

function clock(ms) {
  if (typeof ms !== "number") return ""
  const d = new Date(ms)
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
}

function duration(ms) {
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) return ""
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`
  const minutes = Math.floor(ms / 60_000)
  if (minutes < 60) return `${minutes} min ${Math.floor((ms % 60_000) / 1000)} s`
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`
}

function bytes(n) {
  if (typeof n !== "number" || !Number.isFinite(n)) return ""
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KiB`
  if (n < 1024 * 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MiB`
  return `${(n / (1024 * 1024 * 1024)).toFixed(2)} GiB`
}

function json(value) {
  try {
    const text = JSON.stringify(value, null, 2)
    return text === undefined ? String(value) : text
  } catch {
    return String(value)
  }
}

const percent = (p) => `${Math.round(p * 100)}%`
/** Ids are long (a time part, then random letters): tables show the distinct end, the title and the detail the whole. */
const shortId = (id) => {
  const text = String(id)
  const dash = text.indexOf("-")
  return text.length > 16 && dash > 0 ? `${text.slice(0, dash + 1)}…${text.slice(-8)}` : text
}
const isActive = (status) => status === "pending" || status === "running"

// ---------------------------------------------------------------------------
// Notices and the connection indicator.

let noticeTimer = 0

/** One line at the top of the page; errors stay until the next notice, others fade. */
function notice(text, kind = "info") {
  const box = $("notice")
  box.textContent = text
  box.dataset.kind = kind
  box.hidden = false
  clearTimeout(noticeTimer)
  if (kind !== "error") noticeTimer = window.setTimeout(() => (box.hidden = true), 4000)
}

function setConnection(stateName, text) {
  const box = $("connection")
  box.dataset.state = stateName
  setText($("connection-text"), text)
}

// ---------------------------------------------------------------------------
// The token: taken from the URL fragment once, kept for this tab only.

function takeTokenFromFragment() {
  const match = /(?:^#|&)token=([^&]*)/.exec(window.location.hash)
  if (match === null) return
  let token = match[1]
  try {
    token = decodeURIComponent(token)
  } catch {
    // keep it as written
  }
  if (token !== "") sessionStorage.setItem(TOKEN_KEY, token)
  // The token must not stay in the address bar, the history or a bookmark.
  history.replaceState(null, "", window.location.pathname + window.location.search)
}

const token = () => sessionStorage.getItem(TOKEN_KEY)

function renderTokenStatus() {
  const box = $("token-status")
  box.replaceChildren()
  if (token() === null) {
    box.append(el("span", { className: "muted" }, "no token: actions will ask for it"))
  } else {
    const forget = el("button", { type: "button", className: "quiet small" }, "Forget")
    forget.addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY)
      renderTokenStatus()
    })
    box.append(el("span", { className: "muted" }, "token set"), " ", forget)
  }
}

/** @type {((token: string | null) => void) | null} */
let tokenWaiter = null

/** The token, asking for it with the inline form when there is none. Null when the user cancels. */
function askToken(reason) {
  const existing = token()
  if (existing !== null) return Promise.resolve(existing)
  const panel = $("token-panel")
  panel.hidden = false
  if (reason) notice(reason, "error")
  const input = /** @type {HTMLInputElement} */ ($("token-input"))
  input.value = ""
  input.focus()
  if (tokenWaiter !== null) tokenWaiter(null)
  return new Promise((resolve) => (tokenWaiter = resolve))
}

function closeTokenForm(value) {
  $("token-panel").hidden = true
  const waiter = tokenWaiter
  tokenWaiter = null
  if (waiter !== null) waiter(value)
}

function setupTokenForm() {
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault()
    const value = /** @type {HTMLInputElement} */ ($("token-input")).value.trim()
    if (value === "") return
    sessionStorage.setItem(TOKEN_KEY, value)
    renderTokenStatus()
    $("notice").hidden = true
    closeTokenForm(value)
  })
  $("token-cancel").addEventListener("click", () => closeTokenForm(null))
}

// ---------------------------------------------------------------------------
// The API.

async function getJson(path) {
  const response = await fetch(path, { headers: { accept: "application/json" }, cache: "no-store" })
  if (!response.ok) {
    const body = await response.json().catch(() => ({}))
    const error = new Error(typeof body.error === "string" ? body.error : `${path} answered ${response.status}`)
    // @ts-ignore a status for the callers that care
    error.status = response.status
    throw error
  }
  return response.json()
}

/**
 * A mutating request: with the token (asked for when missing), and asked for
 * again when the server refuses it. Null when it did not happen.
 */
async function mutate(path, body) {
  for (let tries = 0; tries < 3; tries++) {
    const bearer = await askToken(tries === 0 ? undefined : "The server refused the token (401 Unauthorized): enter the token this server printed at its first start.")
    if (bearer === null) {
      notice("Nothing done: the action needs the server's token.")
      return null
    }
    let response
    try {
      response = await fetch(path, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json", authorization: `Bearer ${bearer}` },
        body: JSON.stringify(body ?? {}),
      })
    } catch {
      notice(`Could not reach the server for ${path}: is plinth serve still running?`, "error")
      return null
    }
    if (response.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY)
      renderTokenStatus()
      continue
    }
    const answer = await response.json().catch(() => ({}))
    if (!response.ok) {
      notice(typeof answer.error === "string" ? answer.error : `${path} answered ${response.status}`, "error")
      return null
    }
    return answer
  }
  return null
}

async function cancelJob(id) {
  const answer = await mutate(`/api/jobs/${encodeURIComponent(id)}/cancel`)
  if (answer === null) return
  notice(answer.cancelled ? `Cancelling ${id}.` : `${id} has already finished: nothing to cancel.`)
  scheduleJobsRefresh()
}

async function reorderJob(id, text) {
  const priority = Number(text)
  if (text.trim() === "" || !Number.isFinite(priority)) {
    notice(`A priority is a number; "${text}" is not one.`, "error")
    return
  }
  const answer = await mutate(`/api/jobs/${encodeURIComponent(id)}/priority`, { priority })
  if (answer === null) return
  notice(answer.reordered ? `${id} now has priority ${priority}.` : `${id} is no longer pending: its priority stays.`)
  scheduleJobsRefresh()
}

// ---------------------------------------------------------------------------
// Loading and refreshing.

const rank = { pending: 0, running: 1, completed: 2, failed: 2, cancelled: 2 }

/** When an event last changed each job here (performance.now()); what the API says is older than that. */
const touched = new Map()

/**
 * A job as the API returned it, reconciled with what events said since the
 * request left: an answer older than the last event never moves a job back
 * (running to pending, a bar backwards), it only fills in what events do not
 * carry (input, result, error).
 */
function reconcileFetched(job, sentAt) {
  const local = state.jobs.get(job.id)
  if (local === undefined || (touched.get(job.id) ?? -1) < sentAt || rank[local.status] < rank[job.status]) return job
  if (rank[local.status] > rank[job.status]) scheduleJobsRefresh()
  for (const [key, value] of Object.entries(job)) if (!(key in local)) local[key] = value
  return local
}

function replaceJobs(answer, sentAt) {
  const lists = { pending: [], running: [], history: [] }
  const seen = new Set()
  for (const job of [...(answer.pending ?? []), ...(answer.running ?? []), ...(answer.history ?? [])]) {
    const kept = reconcileFetched(job, sentAt)
    seen.add(kept.id)
    state.jobs.set(kept.id, kept)
    lists[kept.status === "pending" ? "pending" : kept.status === "running" ? "running" : "history"].push(kept.id)
  }
  // Jobs the answer predates (submitted since it was sent) stay as events left them.
  for (const [id, at] of touched) {
    if (at < sentAt) {
      touched.delete(id)
      continue
    }
    const local = state.jobs.get(id)
    if (seen.has(id) || local === undefined) continue
    seen.add(id)
    if (local.status === "pending") insertByPriority(lists.pending, id)
    else if (local.status === "running") lists.running.push(id)
    else lists.history.unshift(id)
  }
  state.pending = lists.pending
  state.running = lists.running
  state.history = lists.history
  state.stats = answer.stats ?? null
  // Keep the selected job's record even when it has left the history.
  for (const id of state.jobs.keys()) if (!seen.has(id) && id !== state.selected) state.jobs.delete(id)
}

let jobsInFlight = false
let jobsAgain = false

async function refreshJobs() {
  if (jobsInFlight) {
    jobsAgain = true
    return
  }
  jobsInFlight = true
  try {
    const sentAt = performance.now()
    replaceJobs(await getJson("/api/jobs"), sentAt)
    if (state.selected !== null) detailDirty = true
    scheduleRender()
  } catch (error) {
    notice(`Could not load the queue: ${error.message}`, "error")
  } finally {
    jobsInFlight = false
    if (jobsAgain) {
      jobsAgain = false
      scheduleJobsRefresh()
    }
  }
}

async function refreshInstances() {
  try {
    state.instances = (await getJson("/api/instances")).instances ?? []
    renderInstances()
  } catch (error) {
    notice(`Could not load the instances: ${error.message}`, "error")
  }
}

async function refreshPlugins() {
  try {
    state.plugins = (await getJson("/api/plugins")).plugins ?? []
    renderPlugins()
  } catch (error) {
    notice(`Could not load the plugins: ${error.message}`, "error")
  }
}

/** A trailing debounce that still runs at least every `maxWait` while calls keep coming. */
function debounced(fn, wait, maxWait) {
  let timer = 0
  let first = 0
  return () => {
    const now = Date.now()
    if (first === 0) first = now
    clearTimeout(timer)
    const delay = Math.max(0, Math.min(wait, first + maxWait - now))
    timer = window.setTimeout(() => {
      first = 0
      fn()
    }, delay)
  }
}

const scheduleJobsRefresh = debounced(refreshJobs, 250, 1000)
const scheduleInstancesRefresh = debounced(refreshInstances, 250, 1000)
const scheduleDetailRefresh = debounced(() => refreshDetail(), 300, 1000)

// ---------------------------------------------------------------------------
// Live events.

/** Applies a job event to the rows at once; the debounced re-fetch confirms it. */
function applyJobEvent(event) {
  const id = event.job
  touched.set(id, performance.now())
  let job = state.jobs.get(id)
  if (event._tag === "submitted" && job === undefined) {
    job = {
      id,
      instance: event.instance,
      action: event.action,
      priority: event.priority,
      status: "pending",
      submittedAt: event.at,
      progress: -1,
      retryCount: 0,
      ...(event.sequence ? { sequence: { id: event.sequence, index: -1 } } : {}),
    }
    state.jobs.set(id, job)
    insertPending(id)
    bumpStats(undefined, "pending")
  }
  if (job === undefined) {
    // A job this page has not seen: the re-fetch brings it.
    scheduleJobsRefresh()
    return
  }
  switch (event._tag) {
    case "stateChanged": {
      if (job.status === event.to) break
      bumpStats(job.status, event.to)
      job.status = event.to
      removeFrom(state.pending, id)
      removeFrom(state.running, id)
      if (event.to === "running") {
        job.startedAt = event.at
        state.running.push(id)
      } else if (event.to === "pending") {
        insertPending(id)
      } else {
        job.finishedAt = event.at
        delete job.blockReason
        removeFrom(state.history, id)
        state.history.unshift(id)
        if (state.history.length > MAX_HISTORY) state.history.length = MAX_HISTORY
      }
      scheduleJobsRefresh()
      // An instance's running and waiting counts change with its jobs, without an event of their own.
      scheduleInstancesRefresh()
      break
    }
    case "progressChanged":
      job.progress = event.progress
      if (event.message !== undefined) job.statusMessage = event.message
      break
    case "cancelPhaseChanged":
      job.cancelPhase = event.to
      break
    case "blockReasonChanged":
      if (event.reason === undefined) delete job.blockReason
      else job.blockReason = event.reason
      break
    case "retryStarted":
      job.retryCount = Math.max(job.retryCount ?? 0, event.attempt - 1)
      break
    case "priorityChanged":
      job.priority = event.to
      if (job.status === "pending") {
        removeFrom(state.pending, id)
        insertPending(id)
      }
      scheduleJobsRefresh()
      break
    case "resourceSnapshot":
      job.lastSnapshot = event.snapshot
      break
    default:
      break
  }
  if (id === state.selected) {
    detailDirty = true
    scheduleDetailRefresh()
  }
  scheduleRender()
}

function removeFrom(list, id) {
  const at = list.indexOf(id)
  if (at >= 0) list.splice(at, 1)
}

/** Higher priority first, then first in, first out: after every job of the same or a higher priority. */
function insertByPriority(list, id) {
  const priority = state.jobs.get(id)?.priority ?? 0
  const at = list.findIndex((other) => (state.jobs.get(other)?.priority ?? 0) < priority)
  list.splice(at === -1 ? list.length : at, 0, id)
}

const insertPending = (id) => insertByPriority(state.pending, id)

function bumpStats(from, to) {
  const stats = state.stats
  if (stats === null) return
  if (from !== undefined && typeof stats[from] === "number" && stats[from] > 0) stats[from]--
  if (typeof stats[to] === "number") stats[to]++
}

function describeJobEvent(event) {
  switch (event._tag) {
    case "submitted":
      return `submitted: ${event.instance} ${event.action}, priority ${event.priority}`
    case "stateChanged":
      return `${event.from} → ${event.to}`
    case "progressChanged":
      return `progress ${event.progress < 0 ? "unknown" : percent(event.progress)}${event.message !== undefined ? `: ${event.message}` : ""}`
    case "cancelPhaseChanged":
      return `cancel phase ${event.from ?? "none"} → ${event.to}`
    case "blockReasonChanged":
      return event.reason === undefined ? "no longer waiting for room" : `waiting: ${event.reason}`
    case "retryStarted":
      return `attempt ${event.attempt} (retry by the ${event.by}) after ${event.failure}${event.delayMillis > 0 ? `, in ${duration(event.delayMillis)}` : ""}`
    case "priorityChanged":
      return `priority ${event.from} → ${event.to}`
    case "resourceSnapshot": {
      const s = event.snapshot
      return `worker ${s.pid}: ${bytes(s.rssBytes)} RSS${s.cpuPercent !== undefined ? `, ${s.cpuPercent.toFixed(0)}% CPU` : ""}`
    }
    case "sequenceAdvanced":
      return `step ${event.index + 1} ${event.stepStatus}; sequence ${event.status}`
    default:
      return event._tag
  }
}

function describeBlock(reason) {
  if (reason === null || typeof reason !== "object") return String(reason)
  const mib = (n) => `${Number.isInteger(n) ? n : Number(n).toFixed(1)} MiB`
  if (reason._tag === "LargerThanBudget") return `needs ${mib(reason.expectedMiB)}, more than the budget of ${mib(reason.budgetMiB)}`
  if (reason._tag === "BusyInstancesHoldMemory")
    return `needs ${mib(reason.expectedMiB)}; busy instances (${(reason.busy ?? []).join(", ")}) hold ${mib(reason.busyMiB)} of ${mib(reason.budgetMiB)}`
  return reason._tag ?? json(reason)
}

function describeInstanceEvent(event) {
  switch (event._tag) {
    case "loaded":
      return `loaded${event.pid !== undefined ? `, pid ${event.pid}` : ""}${event.warm ? " (warm worker)" : ""}`
    case "unloaded":
      return "unloaded"
    case "enabled":
      return "enabled"
    case "disabled":
      return `disabled${event.reason !== undefined ? `: ${event.reason}` : ""}`
    case "crashed":
      return `worker ${event.pid ?? ""} crashed (${event.signal !== null ? `signal ${event.signal}` : `exit code ${event.exitCode}`})`
    case "restarted":
      return `worker restarted${event.pid !== undefined ? `, pid ${event.pid}` : ""}`
    case "breakerOpened":
      return `breaker opened after ${event.failures} failures: ${event.lastFailure}`
    case "configChanged":
      return "config changed"
    case "evicted":
      return `evicted (${event.cause}) for ${event.for}`
    case "retryStarted":
      return `${event.action}: attempt ${event.attempt} of ${event.maxAttempts} after ${event.failure}`
    case "admissionBlocked":
      return `waits to start: ${describeBlock(event.reason)}`
    default:
      return event._tag
  }
}

function addFeedEntry(kind, event, subject, text) {
  const list = $("events")
  const item = el(
    "li",
    { className: `event ${kind}`, data: { kind, tag: event._tag } },
    el("time", { className: "when" }, clock(event.at)),
    el("span", { className: "kind" }, kind),
    el("span", { className: "subject mono", title: subject }, shortId(subject)),
    el("span", { className: "what" }, text),
  )
  if (kind === "job" && typeof event.job === "string") {
    item.classList.add("clickable")
    item.title = `Show ${event.job}`
    item.addEventListener("click", () => select(event.job))
  }
  list.prepend(item)
  while (list.childElementCount > MAX_EVENTS) list.lastElementChild?.remove()
}

function onJobMessage(message) {
  let event
  try {
    event = JSON.parse(message.data)
  } catch {
    return
  }
  // Resource samples come every few seconds per running job: they update the job's row, not the feed.
  if (event._tag !== "resourceSnapshot") addFeedEntry("job", event, event.sequence !== undefined && event._tag === "sequenceAdvanced" ? event.sequence : event.job, describeJobEvent(event))
  applyJobEvent(event)
}

function onInstanceMessage(message) {
  let event
  try {
    event = JSON.parse(message.data)
  } catch {
    return
  }
  addFeedEntry("instance", event, event.instance, describeInstanceEvent(event))
  scheduleInstancesRefresh()
}

let opened = false

function connect() {
  const source = new EventSource("/api/events")
  source.addEventListener("open", () => {
    setConnection("live", "live")
    // After a reconnect, what happened meanwhile comes from the API.
    if (opened) {
      scheduleJobsRefresh()
      scheduleInstancesRefresh()
    }
    opened = true
  })
  source.addEventListener("job", onJobMessage)
  source.addEventListener("instance", onInstanceMessage)
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) {
      // The browser gave up (the server answered with an error): try again later ourselves.
      setConnection("offline", "offline, retrying…")
      source.close()
      window.setTimeout(connect, 5000)
    } else {
      setConnection("reconnecting", "reconnecting…")
    }
  })
}

// ---------------------------------------------------------------------------
// Rendering. Rows are kept per job and updated in place, so a priority being
// typed or a button being pressed survives the live updates.

let renderQueued = false
/** The detail panel is rebuilt only when its job changed, so a log being read or selected stays put. */
let detailDirty = false

function scheduleRender() {
  if (renderQueued) return
  renderQueued = true
  requestAnimationFrame(() => {
    renderQueued = false
    renderQueue()
  })
}

/** Puts `ids`' rows into `tbody` in order, building missing rows and dropping others. */
function reconcile(tbody, rows, ids, build, update) {
  const keep = new Set(ids)
  for (const [id, row] of rows) {
    if (!keep.has(id)) {
      row.remove()
      rows.delete(id)
    }
  }
  let cursor = tbody.firstElementChild
  ids.forEach((id, index) => {
    let row = rows.get(id)
    if (row === undefined) {
      row = build(id)
      rows.set(id, row)
    }
    update(row, state.jobs.get(id), index)
    if (row === cursor) cursor = cursor.nextElementSibling
    else tbody.insertBefore(row, cursor)
  })
}

function jobRow(id, cells) {
  const row = el("tr", { className: "job", tabIndex: 0, title: `Show ${id}`, data: { jobId: id } })
  row.addEventListener("click", (event) => {
    const target = /** @type {HTMLElement} */ (event.target)
    if (target.closest("button, input, form")) return
    select(id)
  })
  row.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.target === row) select(id)
  })
  /** @type {Record<string, HTMLElement>} */
  const parts = {}
  for (const name of cells) {
    parts[name] = el("td", { className: name })
    row.append(parts[name])
  }
  // @ts-ignore the row keeps its cells
  row.parts = parts
  return row
}

function cancelButton(id) {
  const button = el("button", { type: "button", className: "cancel small", title: `Cancel ${id}` }, "Cancel")
  button.addEventListener("click", () => {
    button.disabled = true
    cancelJob(id).finally(() => (button.disabled = false))
  })
  return button
}

function jobCell(cell, job) {
  if (cell.childElementCount === 0) cell.append(el("span", { className: "mono id" }), el("span", { className: "tag" }))
  setText(cell.children[0], shortId(job.id))
  cell.children[0].title = job.id
  const tag = job.sequence !== undefined ? `step ${job.sequence.index >= 0 ? job.sequence.index + 1 : "?"} of ${job.sequence.id}` : ""
  setText(cell.children[1], tag)
}

function whatCell(cell, job) {
  if (cell.childElementCount === 0) cell.append(el("span", { className: "instance" }), el("span", { className: "action" }))
  setText(cell.children[0], job.instance)
  setText(cell.children[1], job.action)
}

const pendingRows = new Map()
const runningRows = new Map()
const historyRows = new Map()

function buildPending(id) {
  const row = jobRow(id, ["pos", "job", "what", "priority", "waiting", "actions"])
  // @ts-ignore
  const parts = row.parts
  const form = el("form", { className: "reorder" })
  const input = el("input", { type: "number", step: "any", className: "priority-input", title: "New priority (higher runs first)" })
  input.setAttribute("aria-label", `Priority of ${id}`)
  form.append(input, el("button", { type: "submit", className: "reorder small" }, "Set"))
  form.addEventListener("submit", (event) => {
    event.preventDefault()
    reorderJob(id, input.value).finally(() => input.blur())
  })
  parts.priority.append(el("span", { className: "priority-value" }), form)
  parts.actions.append(cancelButton(id))
  return row
}

function updatePending(row, job, index) {
  const parts = row.parts
  row.dataset.status = job.status
  setText(parts.pos, index + 1)
  jobCell(parts.job, job)
  whatCell(parts.what, job)
  setText(parts.priority.querySelector(".priority-value"), job.priority)
  const input = parts.priority.querySelector("input")
  if (document.activeElement !== input && input.value !== String(job.priority)) input.value = String(job.priority)
  const waited = duration(Date.now() - job.submittedAt)
  setText(parts.waiting, job.blockReason !== undefined ? `${waited} · ${job.blockReason}` : waited)
  parts.waiting.classList.toggle("blocked", job.blockReason !== undefined)
}

function buildRunning(id) {
  const row = jobRow(id, ["job", "what", "progress", "worker", "started", "actions"])
  // @ts-ignore
  const parts = row.parts
  parts.progress.append(
    el("div", { className: "bar" }, el("progress", { max: 1 }), el("span", { className: "pct" })),
    el("div", { className: "message" }),
  )
  parts.actions.append(cancelButton(id))
  return row
}

function updateRunning(row, job) {
  const parts = row.parts
  row.dataset.status = job.status
  jobCell(parts.job, job)
  whatCell(parts.what, job)
  const bar = /** @type {HTMLProgressElement} */ (parts.progress.querySelector("progress"))
  if (job.progress >= 0) {
    if (bar.value !== job.progress || !bar.hasAttribute("value")) bar.value = job.progress
    setText(parts.progress.querySelector(".pct"), percent(job.progress))
  } else {
    // No value: an indeterminate bar until the plugin reports.
    bar.removeAttribute("value")
    setText(parts.progress.querySelector(".pct"), "")
  }
  const notes = []
  if (job.statusMessage !== undefined) notes.push(job.statusMessage)
  if (job.cancelPhase !== undefined) notes.push(`cancelling: ${job.cancelPhase}`)
  if (job.retryCount > 0) notes.push(`retry ${job.retryCount}`)
  if (job.blockReason !== undefined) notes.push(job.blockReason)
  setText(parts.progress.querySelector(".message"), notes.join(" · "))
  row.classList.toggle("cancelling", job.cancelPhase !== undefined)
  const s = job.lastSnapshot
  if (parts.worker.childElementCount === 0) parts.worker.append(el("span", { className: "pid" }), el("span", { className: "use" }))
  setText(parts.worker.children[0], s !== undefined ? `pid ${s.pid}` : "")
  setText(parts.worker.children[1], s !== undefined ? `${bytes(s.rssBytes)}${s.cpuPercent !== undefined ? ` · ${s.cpuPercent.toFixed(0)}% CPU` : ""}` : "")
  setText(parts.started, job.startedAt !== undefined ? `${clock(job.startedAt)} (${duration(Date.now() - job.startedAt)})` : "")
}

function buildHistory(id) {
  const row = jobRow(id, ["job", "what", "status", "duration", "finished", "error"])
  // @ts-ignore
  row.parts.status.append(el("span", { className: "badge" }))
  return row
}

function updateHistory(row, job) {
  const parts = row.parts
  row.dataset.status = job.status
  jobCell(parts.job, job)
  whatCell(parts.what, job)
  const badge = parts.status.firstElementChild
  setText(badge, job.retryCount > 0 ? `${job.status} · ${job.retryCount} ${job.retryCount === 1 ? "retry" : "retries"}` : job.status)
  badge.dataset.status = job.status
  setText(parts.duration, job.startedAt !== undefined && job.finishedAt !== undefined ? duration(job.finishedAt - job.startedAt) : job.status === "cancelled" ? "never ran" : "")
  setText(parts.finished, clock(job.finishedAt))
  setText(parts.error, job.error !== undefined ? job.error.message : "")
  parts.error.title = job.error !== undefined ? `${job.error.category} · ${job.error.tag}` : ""
}

function renderStats() {
  const box = $("stats")
  const stats = state.stats
  const throughput = stats?.throughput
  const items = [
    ["pending", stats?.pending ?? state.pending.length],
    ["running", stats?.running ?? state.running.length],
    ["completed", stats?.completed],
    ["failed", stats?.failed],
    ["cancelled", stats?.cancelled],
    ["jobs/s", typeof throughput === "number" ? throughput.toFixed(throughput < 10 ? 2 : 0) : undefined],
  ]
  if (box.childElementCount === 0) {
    for (const [name] of items) box.append(el("div", { className: "stat", data: { stat: name } }, el("dt", {}, name), el("dd")))
  }
  items.forEach(([, value], i) => setText(box.children[i].lastElementChild, value ?? "–"))
}

function renderQueue() {
  reconcile($("pending"), pendingRows, state.pending, buildPending, updatePending)
  reconcile($("running"), runningRows, state.running, buildRunning, updateRunning)
  reconcile($("history"), historyRows, state.history, buildHistory, updateHistory)
  for (const [name, list] of [
    ["pending", state.pending],
    ["running", state.running],
    ["history", state.history],
  ]) {
    $(`${name}-empty`).hidden = list.length > 0
    $(`${name}-table`).hidden = list.length === 0
    setText($(`${name}-count`), list.length > 0 ? list.length : "")
  }
  renderStats()
  for (const [id, row] of [...pendingRows, ...runningRows, ...historyRows]) row.classList.toggle("selected", id === state.selected)
  if (detailDirty) {
    detailDirty = false
    renderDetail()
  }
}

function renderInstances() {
  const body = $("instances")
  body.replaceChildren(
    ...state.instances.map((instance) => {
      const breaker = instance.disabledReason ?? (instance.consecutiveFailures > 0 ? `${instance.consecutiveFailures} failures in a row` : "closed")
      return el(
        "tr",
        { data: { instanceId: instance.id, enabled: instance.enabled } },
        el("td", { className: "mono" }, instance.id),
        el("td", {}, instance.plugin),
        el("td", {}, el("span", { className: "badge", data: { status: instance.enabled ? "enabled" : "disabled" } }, instance.enabled ? "enabled" : "disabled"), instance.pid === undefined ? " · no worker" : ""),
        el("td", { className: instance.disabledReason !== undefined ? "bad" : "" }, breaker),
        el("td", { className: "num" }, instance.pid ?? "–"),
        el("td", { className: "num" }, instance.rssBytes !== undefined ? bytes(instance.rssBytes) : "–"),
        el("td", { className: "num" }, `${instance.running} of ${instance.maxConcurrent}`),
        el("td", { className: "num" }, instance.waiting),
      )
    }),
  )
  $("instances-empty").hidden = state.instances.length > 0
  $("instances-table").hidden = state.instances.length === 0
}

function renderPlugins() {
  $("plugins").replaceChildren(
    ...state.plugins.map((plugin) =>
      el(
        "tr",
        { data: { pluginId: plugin.id } },
        el("td", {}, plugin.id),
        el("td", {}, plugin.version),
        el("td", { className: "mono digest", title: plugin.digest }, String(plugin.digest ?? "").replace(/^(sha256[:-])?(.{12}).*$/, "$1$2…")),
        el("td", {}, el("span", { className: "badge", data: { status: plugin.lock } }, plugin.lock)),
      ),
    ),
  )
  $("plugins-empty").hidden = state.plugins.length > 0
  $("plugins-table").hidden = state.plugins.length === 0
}

// ---------------------------------------------------------------------------
// A job's detail.

function select(id) {
  state.selected = id
  state.detailLogs = null
  state.detailMissing = false
  detailDirty = true
  scheduleRender()
  refreshDetail()
}

let detailGeneration = 0

async function refreshDetail() {
  const id = state.selected
  if (id === null) return
  const generation = ++detailGeneration
  const sentAt = performance.now()
  try {
    const [job, logs] = await Promise.all([getJson(`/api/jobs/${encodeURIComponent(id)}`), getJson(`/api/jobs/${encodeURIComponent(id)}/logs`)])
    if (generation !== detailGeneration) return
    state.jobs.set(id, reconcileFetched(job, sentAt))
    state.detailLogs = logs.lines ?? []
    state.detailMissing = false
  } catch (error) {
    if (generation !== detailGeneration) return
    if (error.status === 404) state.detailMissing = true
    else notice(`Could not load ${id}: ${error.message}`, "error")
  }
  detailDirty = true
  scheduleRender()
}

function field(list, name, value) {
  if (value === undefined || value === null || value === "") return
  list.append(el("dt", {}, name), el("dd", {}, value))
}

function renderDetail() {
  const id = state.selected
  const box = $("detail")
  $("detail-empty").hidden = id !== null
  box.hidden = id === null
  setText($("detail-title"), id ?? "")
  if (id === null) return
  const job = state.jobs.get(id)
  const parts = []
  if (job === undefined) {
    parts.push(el("p", { className: "empty" }, state.detailMissing ? "The server no longer knows this job." : "Loading…"))
    box.replaceChildren(...parts)
    return
  }
  const fields = el("dl", { className: "fields" })
  field(fields, "Status", el("span", { className: "badge", data: { status: job.status } }, job.status))
  field(fields, "Instance", job.instance)
  field(fields, "Action", job.action)
  field(fields, "Priority", job.priority)
  field(fields, "Submitted", clock(job.submittedAt))
  field(fields, "Started", clock(job.startedAt))
  field(fields, "Finished", clock(job.finishedAt))
  if (job.startedAt !== undefined) field(fields, "Duration", duration((job.finishedAt ?? Date.now()) - job.startedAt))
  if (job.progress >= 0 && job.status !== "completed") field(fields, "Progress", percent(job.progress))
  field(fields, "Message", job.statusMessage)
  if (job.retryCount > 0) field(fields, "Retries", job.retryCount)
  field(fields, "Cancel phase", job.cancelPhase)
  field(fields, "Waiting", job.blockReason)
  field(fields, "Idempotency key", job.idempotencyKey)
  if (job.timeoutMillis !== undefined) field(fields, "Timeout", duration(job.timeoutMillis))
  if (job.sequence !== undefined) field(fields, "Sequence", `${job.sequence.id}, step ${job.sequence.index + 1}`)
  if (job.lastSnapshot !== undefined) {
    const s = job.lastSnapshot
    field(fields, "Worker", `pid ${s.pid} · ${bytes(s.rssBytes)} RSS · ${duration(s.cpuMillis)} CPU`)
  }
  parts.push(fields)
  if (isActive(job.status)) parts.push(el("div", { className: "detail-actions" }, cancelButton(id)))
  if ("input" in job) parts.push(el("h3", {}, "Input"), el("pre", { className: "value input" }, json(job.input)))
  if (job.result !== undefined) parts.push(el("h3", {}, "Result"), el("pre", { className: "value result" }, json(job.result)))
  if (job.error !== undefined) {
    const e = job.error
    parts.push(
      el("h3", {}, "Error"),
      el(
        "div",
        { className: "error-box" },
        el("p", { className: "error-message" }, e.message),
        el("p", { className: "muted" }, `${e.category} · ${e.tag}${e.retriable ? " · retriable" : ""}${e.retryAfterSeconds !== undefined ? ` · retry after ${e.retryAfterSeconds} s` : ""}`),
        e.fieldsInvalid !== undefined ? el("p", { className: "muted" }, `invalid: ${e.fieldsInvalid.join(", ")}`) : null,
        e.shortfall !== undefined ? el("pre", { className: "value" }, json(e.shortfall)) : null,
      ),
    )
  }
  parts.push(el("h3", {}, "Log"))
  const lines = state.detailLogs
  if (lines === null) parts.push(el("p", { className: "empty" }, "Loading…"))
  else if (lines.length === 0) parts.push(el("p", { className: "empty" }, "No output."))
  else {
    parts.push(
      el(
        "ol",
        { className: "log" },
        ...lines.slice(-MAX_LOG_LINES).map((line) =>
          el("li", { data: { stream: line.stream } }, el("time", {}, clock(line.at)), el("span", { className: "stream" }, line.stream), el("span", { className: "line" }, line.line)),
        ),
      ),
    )
  }
  box.replaceChildren(...parts)
}

// ---------------------------------------------------------------------------
// Start.

function start() {
  takeTokenFromFragment()
  renderTokenStatus()
  setupTokenForm()
  connect()
  refreshPlugins()
  refreshInstances()
  refreshJobs()
  // Elapsed times, and the logs of a running job (they come with no event), move on their own.
  window.setInterval(() => {
    if (state.pending.length > 0 || state.running.length > 0) scheduleRender()
    const selected = state.selected === null ? undefined : state.jobs.get(state.selected)
    if (selected !== undefined && selected.status === "running") refreshDetail()
  }, 2000)
  // RSS and pids change without events.
  window.setInterval(refreshInstances, 5000)
}

start()
