// Conveyor's dashboard: three views (queues, jobs, a job) over the server's JSON API,
// kept live by one Server-Sent Events stream. No framework, nothing fetched from elsewhere.
"use strict";

const PHASES = ["Pending", "Blocked", "Delayed", "Queued", "Running", "BackingOff", "Succeeded", "Failed"];
const GROUPS = [
  ["waiting", "Waiting", ["Pending", "Queued"]],
  ["delayed", "Delayed", ["Delayed", "BackingOff"]],
  ["blocked", "Blocked", ["Blocked"]],
  ["running", "Running", ["Running"]],
  ["succeeded", "Succeeded", ["Succeeded"]],
  ["failed", "Failed", ["Failed"]],
];
const state = { overview: null, version: -1, skew: 0, route: null, rendered: null, busy: false };
const view = document.getElementById("view");

// ------------------------------------------------------------------ helpers

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function now() { return Date.now() + state.skew; }

function human(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  let s = Math.floor(seconds);
  if (s < 0) return "0s";
  if (s < 120) return s + "s";
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 ? `${m}m${s % 60}s` : `${m}m`;
  if (m < 180) return m + "m";
  const hr = Math.floor(m / 60);
  if (hr < 8) return m % 60 ? `${hr}h${m % 60}m` : `${hr}h`;
  if (hr < 48) return hr + "h";
  const d = Math.floor(hr / 24);
  return hr % 24 && d < 8 ? `${d}d${hr % 24}h` : `${d}d`;
}

function age(stamp) { return stamp ? human((now() - Date.parse(stamp)) / 1000) : "—"; }

function until(stamp) {
  if (!stamp) return "—";
  const s = (Date.parse(stamp) - now()) / 1000;
  return s > 0 ? "in " + human(s) : "now";
}

function num(n, col) { return h("td", { class: "num" + (n ? "" : " zero"), "data-col": col }, String(n)); }

function phase(p) { return h("span", { class: "phase " + p, "data-phase": p }, p); }

function rate(perMinute) {
  if (!perMinute) return "0";
  return perMinute >= 10 ? perMinute.toFixed(0) + "/m" : perMinute.toFixed(1) + "/m";
}

function params() {
  const [path, query] = (location.hash.slice(1) || "/").split("?");
  return { path, query: new URLSearchParams(query || "") };
}

// An empty value is no filter, but for the queue: queue="" is the jobs that name none.
function kept(key, value) { return value !== null && value !== undefined && (value !== "" || key === "queue"); }

function link(path, query) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) if (kept(k, v)) q.set(k, v);
  const s = q.toString();
  return "#" + path + (s ? "?" + s : "");
}

function namespace() { return document.getElementById("namespace").value; }

async function get(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

async function act(url, confirmText) {
  if (confirmText && !window.confirm(confirmText)) return;
  try {
    const response = await fetch(url, { method: "POST", headers: { "X-Conveyor-Action": "1" } });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error || response.statusText);
    toast(body.done === true ? "done" : String(body.done));
    refresh(true);
  } catch (error) {
    toast(error.message, true);
  }
}

function toast(text, error) {
  const el = document.getElementById("toast");
  el.textContent = text;
  el.className = error ? "error" : "";
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, error ? 8000 : 3500);
}

function allow() { return state.overview && state.overview.allowActions; }

function button(label, onclick, opts) {
  return h("button", { class: (opts && opts.cls) || "", onclick, "data-action": (opts && opts.id) || label }, label);
}

// ------------------------------------------------------------------ the chart

function chart(buckets) {
  const W = 900, H = 170, pad = 28;
  const max = Math.max(1, ...buckets.map(b => b.succeeded + b.failed + b.disrupted));
  const bw = (W - pad) / buckets.length;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("preserveAspectRatio", "none");
  const add = (tag, attrs, text) => {
    const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    svg.append(el);
    return el;
  };
  const base = H - 16;
  const scale = (base - 8) / max;
  add("line", { x1: pad, y1: base, x2: W, y2: base, class: "axis" });
  add("text", { x: 2, y: 14 }, String(max));
  add("text", { x: 2, y: base }, "0");
  buckets.forEach((b, i) => {
    const x = pad + i * bw + 1;
    let y = base;
    for (const [value, cls] of [[b.succeeded, "s"], [b.failed, "f"], [b.disrupted, "d"]]) {
      if (!value) continue;
      const height = value * scale;
      y -= height;
      const r = add("rect", { x, y, width: Math.max(1, bw - 2), height, class: cls });
      const t = document.createElementNS("http://www.w3.org/2000/svg", "title");
      t.textContent = `${new Date(b.start).toLocaleTimeString()}: ${b.succeeded} succeeded, ${b.failed} failed, ${b.disrupted} disrupted`;
      r.append(t);
    }
    if (i % 10 === 0) add("text", { x, y: H - 3 }, new Date(b.start).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
  });
  const total = key => buckets.reduce((n, b) => n + b[key], 0);
  return h("div", { class: "panel", "data-testid": "throughput" },
    svg,
    h("div", { class: "legend" },
      h("span", {}, h("i", { style: "background:var(--ok)" }), `succeeded ${total("succeeded")}`),
      h("span", {}, h("i", { style: "background:var(--bad)" }), `failed ${total("failed")}`),
      h("span", {}, h("i", { style: "background:var(--warn)" }), `disrupted ${total("disrupted")}`),
      h("span", {}, "attempts ended per minute, last hour")));
}

// ------------------------------------------------------------------ views

function cards(phases, query) {
  return h("div", { class: "cards" }, GROUPS.map(([key, label, members]) =>
    h("a", { class: "card " + key, href: link("/jobs", { ...query, phase: members.join(",") }), "data-testid": "card-" + key },
      h("div", { class: "n" }, String(members.reduce((n, p) => n + (phases[p] || 0), 0))),
      h("div", { class: "l" }, label))));
}

function queueTable(queues) {
  if (!queues.length) return h("div", { class: "panel empty" }, "No queues (and no jobs) in this namespace.");
  const allNs = !namespace();
  const head = ["Queue", ...(allNs ? ["Namespace"] : []), "Waiting", "Delayed", "Blocked", "Running", "Succeeded", "Failed", "Rate", "Oldest waiting", "State", ""];
  return h("div", { class: "table-wrap" }, h("table", { "data-testid": "queues" },
    h("thead", {}, h("tr", {}, head.map((c, i) => h("th", { class: i > (allNs ? 1 : 0) && i < head.length - 3 ? "num" : "" }, c)))),
    h("tbody", {}, queues.map(q => {
      const name = q.name || "(no queue)";
      const query = { namespace: q.namespace, queue: q.name };
      return h("tr", { class: q.paused ? "paused" : "", "data-queue": q.name, "data-namespace": q.namespace },
        h("td", {}, h("a", { href: link(`/queue/${q.namespace}/${q.name || "-"}`) }, name)),
        allNs ? h("td", { class: "muted" }, q.namespace) : null,
        num(q.waiting, "waiting"), num(q.delayed, "delayed"), num(q.blocked, "blocked"),
        num(q.running, "running"), num(q.succeeded, "succeeded"),
        h("td", { class: "num" + (q.failed ? " bad" : " zero"), "data-col": "failed" },
          q.failed ? h("a", { class: "bad", href: link("/jobs", { ...query, phase: "Failed" }), "data-testid": "failed-link" }, String(q.failed)) : "0"),
        h("td", { class: "num" }, rate(q.ratePerMinute)),
        h("td", { class: "num" }, q.oldestWaitingSeconds === null ? "—" : human(q.oldestWaitingSeconds)),
        h("td", { "data-col": "state" }, !q.exists ? h("span", { class: "muted" }, "no JobQueue") : q.paused ? h("b", {}, "paused") : "admitting"),
        h("td", {}, allow() ? queueButtons(q) : null));
    }))));
}

function queueButtons(q) {
  const base = `/api/queues/${q.namespace}/${q.name || "-"}`;
  return h("div", { class: "actions" },
    !q.exists ? null : q.paused
      ? button("Resume", () => act(`${base}/resume`), { id: "resume" })
      : button("Pause", () => act(`${base}/pause`), { id: "pause" }),
    q.failed ? button(`Retry ${q.failed} failed`, () => act(`${base}/retry-failed`, `Retry all ${q.failed} failed jobs of ${q.name || "no queue"}?`), { id: "retry-failed" }) : null);
}

async function queuesView() {
  const o = state.overview || await get(`/api/overview?namespace=${encodeURIComponent(namespace())}`);
  return h("div", {},
    h("h1", {}, "Queues"),
    cards(o.phases, { namespace: namespace() }),
    chart(o.throughput),
    h("h2", {}, "Queues"),
    queueTable(o.queues));
}

async function queueView(ns, name) {
  const o = await get(`/api/overview?namespace=${encodeURIComponent(ns)}&queue=${encodeURIComponent(name)}`);
  const q = o.queues.find(x => x.name === name && x.namespace === ns);
  if (!q) return h("div", { class: "panel empty" }, `Queue ${ns}/${name} not found.`);
  const phases = {};
  for (const [key, , members] of GROUPS) phases[members[0]] = q[key];
  return h("div", {},
    h("h1", {}, `Queue ${name || "(no queue)"} `, h("span", { class: "muted" }, ns)),
    h("div", { class: "toolbar" },
      q.paused ? h("b", {}, "paused") : h("span", { class: "muted" }, "admitting"),
      h("span", { class: "muted" }, `concurrency ${q.concurrency ?? "unlimited"}, rate limit ${q.rateLimit || "none"}`),
      allow() ? queueButtons(q) : null),
    cards(phases, { namespace: ns, queue: name }),
    chart(o.throughput),
    h("h2", {}, "Jobs"),
    await jobsList({ namespace: ns, queue: name, phase: params().query.get("phase") || "", q: params().query.get("q") || "", offset: params().query.get("offset") || 0 }, `/queue/${ns}/${name || "-"}`));
}

async function jobsList(filters, path) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(filters)) if (kept(k, v)) q.set(k, v);
  q.set("limit", "50");
  const page = await get(`/api/jobs?${q}`);
  const base = { namespace: filters.namespace, queue: filters.queue, q: filters.q };
  const total = PHASES.reduce((n, p) => n + (page.phases[p] || 0), 0);
  const tabs = h("div", { class: "tabs", "data-testid": "phase-tabs" },
    h("a", { href: link(path, base), class: filters.phase ? "" : "active" }, "All", h("span", { class: "c" }, String(total))),
    PHASES.map(p => h("a", { href: link(path, { ...base, phase: p }), class: filters.phase === p ? "active" : "", "data-tab": p },
      p, h("span", { class: "c" }, String(page.phases[p] || 0)))));
  const search = h("input", { type: "search", placeholder: "search name, queue, failure, result…", value: filters.q || "", "aria-label": "search" });
  search.addEventListener("input", () => {
    clearTimeout(search.timer);
    search.timer = setTimeout(() => { location.hash = link(path, { ...base, phase: filters.phase, q: search.value }); }, 300);
  });
  const allNs = !filters.namespace;
  const head = ["Name", ...(allNs ? ["Namespace"] : []), "Queue", "Phase", "Attempts", "Last failure", "Result", "Next attempt", "Age"];
  const rows = page.items.map(j => h("tr", { "data-job": j.name },
    h("td", {}, h("a", { href: link(`/job/${j.namespace}/${j.name}`) }, j.name), j.schedule ? h("span", { class: "muted" }, `  ⟳ ${j.schedule}`) : null, j.manual ? h("span", { class: "muted" }, "  manual") : null),
    allNs ? h("td", { class: "muted" }, j.namespace) : null,
    h("td", {}, j.queue || h("span", { class: "muted" }, "—")),
    h("td", {}, phase(j.phase)),
    h("td", { class: "num" }, j.attemptsSummary || "—"),
    h("td", { class: j.lastFailure ? "bad" : "muted" }, j.lastFailure ? `${j.lastFailure}${j.lastExitCode !== null ? " (" + j.lastExitCode + ")" : ""}` : "—"),
    h("td", { class: "wrap muted" }, j.result ? j.result.slice(0, 80) : "—"),
    h("td", {}, j.phase === "BackingOff" || j.phase === "Delayed" ? until(j.nextAttemptAt) : "—"),
    h("td", {}, age(j.created))));
  const offset = page.offset;
  const pager = h("div", { class: "pager", "data-testid": "pager" },
    h("span", {}, page.total ? `${offset + 1}–${offset + page.items.length} of ${page.total}` : "no jobs"),
    button("‹ Newer", () => { location.hash = link(path, { ...base, phase: filters.phase, offset: Math.max(0, offset - page.limit) }); }, { id: "newer" }),
    button("Older ›", () => { location.hash = link(path, { ...base, phase: filters.phase, offset: offset + page.limit }); }, { id: "older" }));
  pager.querySelector('[data-action="newer"]').disabled = offset === 0;
  pager.querySelector('[data-action="older"]').disabled = offset + page.items.length >= page.total;
  return h("div", {},
    tabs,
    h("div", { class: "toolbar" }, search),
    page.items.length
      ? h("div", { class: "table-wrap" }, h("table", { "data-testid": "jobs", "data-total": page.total },
          h("thead", {}, h("tr", {}, head.map(c => h("th", {}, c)))), h("tbody", {}, rows)))
      : h("div", { class: "panel empty" }, "No jobs match."),
    pager);
}

async function jobsView() {
  const { query } = params();
  const filters = {
    namespace: namespace(), queue: query.get("queue") ?? undefined, phase: query.get("phase") || "",
    q: query.get("q") || "", offset: query.get("offset") || 0,
  };
  if (query.get("namespace") !== null && query.get("namespace") !== namespace()) filters.namespace = query.get("namespace");
  return h("div", {}, h("h1", {}, "Jobs"), await jobsList(filters, "/jobs"));
}

function fields(pairs) {
  return h("dl", { class: "fields" }, pairs.filter(p => p).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "—")]));
}

function attemptCard(a) {
  const result = a.result || (a.finished ? "—" : "Running");
  return h("div", { class: "attempt " + result, "data-attempt": a.attempt },
    h("div", { class: "head" },
      h("b", {}, `#${a.attempt}`),
      phase(result),
      a.reason && a.reason !== "Completed" ? h("span", { class: result === "Failed" ? "bad" : "" }, a.reason) : null,
      a.exitCode !== null ? h("span", {}, `exit code ${a.exitCode}`) : null,
      h("span", { class: "muted" }, a.pod || ""),
      h("span", { class: "muted" }, a.started ? `started ${age(a.started)} ago` : ""),
      a.durationSeconds !== null ? h("span", { class: "muted" }, `ran ${human(a.durationSeconds)}`) : null),
    a.message && a.message !== a.output ? [h("div", { class: "label" }, "message"), h("pre", { class: "light" }, a.message)] : null,
    a.output ? [h("div", { class: "label" }, "result (termination message)"), h("pre", { class: "light", "data-testid": "output" }, a.output)] : null,
    a.logTail ? [h("div", { class: "label" }, "log tail"), h("pre", {}, a.logTail)] : null);
}

async function jobView(ns, name) {
  const d = await get(`/api/jobs/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`);
  const j = d.row, status = d.job.status || {};
  state.jobRow = JSON.stringify(j);
  const can = d.applicable;
  const base = `/api/jobs/${ns}/${name}`;
  const buttons = d.allowActions ? h("div", { class: "actions", "data-testid": "job-actions" },
    can.retry ? button("Retry", () => act(`${base}/retry`), { id: "retry", cls: "primary" }) : null,
    can.promote ? button("Promote", () => act(`${base}/promote`), { id: "promote" }) : null,
    can["run-now"] ? button("Run now", () => act(`${base}/run-now`), { id: "run-now", cls: "primary" }) : null,
    can.cancel ? button("Cancel", () => act(`${base}/cancel`, `Cancel ${name}? A running pod is deleted.`), { id: "cancel", cls: "danger" }) : null)
    : h("span", { class: "muted" }, "read-only");
  const terminal = (status.conditions || []).find(c => (c.type === "Succeeded" || c.type === "Failed") && c.status === "True");
  const job = h("div", {},
    h("h1", {}, name, " ", phase(j.phase)),
    h("div", { class: "toolbar" }, buttons),
    h("div", { class: "grid2" },
      h("div", { class: "panel" }, fields([
        ["Namespace", ns],
        ["Queue", j.queue ? h("a", { href: link(`/queue/${ns}/${j.queue}`) }, j.queue) : "—"],
        ["Attempts", j.attemptsSummary || "—"],
        ["Priority", j.priority],
        ["Created", j.created ? `${age(j.created)} ago` : "—"],
        ["Completed", j.completed ? `${age(j.completed)} ago` : "—"],
        j.nextAttemptAt ? ["Next attempt", until(j.nextAttemptAt)] : null,
        terminal ? ["Reason", `${terminal.reason}: ${terminal.message || ""}`] : null,
        ["Result", j.result ? h("code", { "data-testid": "result" }, j.result) : "—"],
        j.parent ? ["Run of", h("a", { href: link(`/job/${ns}/${j.parent}`) }, j.parent + (j.manual ? " (manual)" : ""))] : null,
        j.schedule ? ["Schedule", j.schedule] : null,
        j.schedule ? ["Next run", until(status.nextScheduleTime)] : null,
      ])),
      h("div", { class: "panel" },
        h("div", { class: "label" }, "depends on"),
        d.dependencies.length ? h("div", { "data-testid": "dependencies" }, d.dependencies.map(x => h("div", {}, h("a", { href: link(`/job/${ns}/${x.name}`) }, x.name), " ", x.phase ? phase(x.phase) : h("span", { class: "muted" }, "not found")))) : h("div", { class: "muted" }, "nothing"),
        h("div", { class: "label" }, "needed by"),
        d.dependents.length ? h("div", {}, d.dependents.map(x => h("div", {}, h("a", { href: link(`/job/${ns}/${x.name}`) }, x.name), " ", phase(x.phase)))) : h("div", { class: "muted" }, "nothing"),
        h("div", { class: "label" }, "conditions"),
        (status.conditions || []).map(c => h("div", {}, `${c.type}=${c.status} `, h("span", { class: "muted" }, `${c.reason || ""}${c.message ? ": " + c.message : ""}`))))),
    j.schedule ? [h("h2", {}, "Runs"), d.runs.length
      ? h("div", { class: "table-wrap" }, h("table", { "data-testid": "runs" },
          h("thead", {}, h("tr", {}, ["Run", "Phase", "Attempts", "Age", ""].map(c => h("th", {}, c)))),
          h("tbody", {}, d.runs.map(r => h("tr", {},
            h("td", {}, h("a", { href: link(`/job/${ns}/${r.name}`) }, r.name)), h("td", {}, phase(r.phase)),
            h("td", {}, r.attemptsSummary || "—"), h("td", {}, age(r.created)), h("td", { class: "muted" }, r.manual ? "manual" : "scheduled"))))))
      : h("div", { class: "panel empty" }, "No runs yet.")] : null,
    j.schedule ? null : [h("h2", {}, "Attempts"), d.attempts.length
      ? h("div", { class: "timeline", "data-testid": "attempts" }, d.attempts.slice().reverse().map(attemptCard))
      : h("div", { class: "panel empty" }, "No attempt yet.")],
    h("h2", {}, "Events"),
    d.events.length ? h("div", { class: "table-wrap" }, h("table", { "data-testid": "events" },
      h("thead", {}, h("tr", {}, ["Age", "Type", "Reason", "Message"].map(c => h("th", {}, c)))),
      h("tbody", {}, d.events.map(e => h("tr", {}, h("td", {}, age(e.time)), h("td", { class: e.type === "Warning" ? "bad" : "" }, e.type), h("td", {}, e.reason), h("td", { class: "wrap" }, e.message))))))
      : h("div", { class: "panel empty" }, "No events (they expire after an hour)."),
    h("h2", {}, "Object"),
    h("details", {}, h("summary", {}, "the BackgroundJob as the API server has it"), h("pre", { class: "light" }, JSON.stringify(d.job, null, 2))));
  return job;
}

// ------------------------------------------------------------------ routing and live updates

async function render(soft) {
  if (state.busy) { state.again = true; return; }
  state.busy = true;
  const { path } = params();
  const parts = path.split("/").filter(Boolean);
  for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("active", a.dataset.nav === (parts[0] === "jobs" || parts[0] === "job" ? "jobs" : "queues"));
  try {
    let el;
    if (parts[0] === "jobs") el = await jobsView();
    else if (parts[0] === "job") el = await jobView(parts[1], parts.slice(2).join("/"));
    else if (parts[0] === "queue") el = await queueView(parts[1], parts[2] === "-" ? "" : parts[2] || "");
    else el = await queuesView();
    const y = window.scrollY;
    const focused = document.activeElement && document.activeElement.type === "search" ? document.activeElement.selectionStart : null;
    view.replaceChildren(el);
    if (soft) window.scrollTo(0, y);
    if (focused !== null) { const s = view.querySelector("input[type=search]"); if (s) { s.focus(); s.setSelectionRange(focused, focused); } }
    view.dataset.ready = "true";
  } catch (error) {
    view.replaceChildren(h("div", { class: "panel empty" }, "Could not load: " + error.message));
  } finally {
    state.busy = false;
    if (state.again) { state.again = false; render(true); }
  }
}

async function refresh(force) {
  const { path } = params();
  if (path.startsWith("/job/")) {
    // A job's page is read from the API server; read it again only when its row moved.
    const [, , ns, ...rest] = path.split("/");
    try {
      const row = await get(`/api/rows/${encodeURIComponent(ns)}/${encodeURIComponent(rest.join("/"))}`);
      if (!force && JSON.stringify(row) === state.jobRow) return;
    } catch (error) { /* gone: render says so */ }
  }
  render(true);
}

function fillNamespaces(names) {
  const select = document.getElementById("namespace");
  const current = select.value;
  const wanted = ["", ...names];
  if ([...select.options].map(o => o.value).join() === wanted.join()) return;
  select.replaceChildren(...wanted.map(n => h("option", { value: n }, n || "all")));
  // One namespace in sight (the dashboard was started with -n): that one, not "all".
  select.value = wanted.includes(current) && current ? current : names.length === 1 ? names[0] : "";
  return select.value !== current;
}

function connect() {
  const live = document.getElementById("live");
  const source = new EventSource(`/api/stream?namespace=${encodeURIComponent(namespace())}`);
  source.addEventListener("overview", event => {
    const o = JSON.parse(event.data);
    state.skew = Date.parse(o.now) - Date.now();
    const first = state.overview === null;
    state.overview = o;
    const moved = fillNamespaces(o.namespaces);
    const mode = document.getElementById("mode");
    mode.textContent = (o.context ? o.context + " · " : "") + (o.allowActions ? "actions on" : "read-only");
    mode.className = "badge" + (o.allowActions ? " write" : "");
    live.classList.add("on");
    if (first || moved) render(false);
    else if (o.version !== state.version) refresh(false);
    state.version = o.version;
  });
  source.onerror = () => live.classList.remove("on");
  return source;
}

let source = null;
document.getElementById("namespace").addEventListener("change", () => {
  state.overview = null;
  if (source) source.close();
  source = connect();
  location.hash = "#/";
});
window.addEventListener("hashchange", () => render(false));
source = connect();
