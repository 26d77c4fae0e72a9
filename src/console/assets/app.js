// corelog console: a page per hash route (#/cluster, #/topics, #/topic/NAME,
// #/messages/NAME/P, #/groups, #/group/NAME), each drawn from the JSON API under /api/.
// Plain JS, no framework and nothing fetched from the internet.
"use strict";

const view = document.getElementById("view");

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  })[c]);
}

function bytes(n) {
  if (n === null || n === undefined || n < 0) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch("/api/" + path, init);
  const data = await resp.json();
  if (!resp.ok) throw new Error(data.error || `HTTP ${resp.status}`);
  return data;
}

function table(id, headers, rows) {
  const head = headers.map((h) => `<th>${esc(h)}</th>`).join("");
  return `<table id="${id}"><thead><tr>${head}</tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

function confirmThen(text, action) {
  const box = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  box.hidden = false;
  const yes = document.getElementById("confirm-yes");
  const no = document.getElementById("confirm-no");
  const close = () => { box.hidden = true; yes.onclick = null; no.onclick = null; };
  yes.onclick = async () => { close(); await action(); };
  no.onclick = close;
}

function notice(text, isError) {
  const el = document.getElementById("notice");
  el.className = isError ? "error" : "notice";
  el.textContent = text;
  el.hidden = false;
}

// ---- live charts: sampled while the page is open, stopped when it changes ----

const CHART_POINTS_MAX = 60;
let timers = [];

function stopTimers() {
  timers.forEach(clearInterval);
  timers = [];
}

function every(ms, f) {
  timers.push(setInterval(f, ms));
}

// An SVG line chart of series {name: [numbers]}, newest last.
function chart(id, title, series, unit) {
  const w = 480, h = 120;
  const all = Object.values(series).flat();
  const max = Math.max(1e-9, ...all);
  const colors = ["#2b6cb0", "#c05621", "#2f855a"];
  const lines = Object.entries(series).map(([name, pts], i) => {
    const xy = pts.map((v, j) => `${(j * w / (CHART_POINTS_MAX - 1)).toFixed(1)},${(h - v / max * h).toFixed(1)}`);
    return `<polyline fill="none" stroke="${colors[i % 3]}" stroke-width="2" points="${xy.join(" ")}"/>`;
  });
  const last = Object.entries(series).map(([name, pts], i) =>
    `<span style="color:${colors[i % 3]}">${esc(name)}: ${pts.length ? fmt(pts[pts.length - 1], unit) : "-"}</span>`);
  const el = document.getElementById(id);
  if (!el) return;
  el.dataset.points = Math.max(0, ...Object.values(series).map((p) => p.length));
  el.innerHTML = `<div>${esc(title)} (max ${fmt(max, unit)}) ${last.join(" ")}</div>
    <svg width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" class="chart">${lines.join("")}</svg>`;
}

function fmt(v, unit) {
  if (unit === "B/s") return bytes(Math.round(v)) + "/s";
  return `${Number.isInteger(v) ? v : v.toFixed(2)} ${unit}`;
}

function push(pts, v) {
  pts.push(v);
  if (pts.length > CHART_POINTS_MAX) pts.shift();
}

async function liveMetrics() {
  const note = document.getElementById("metrics-note");
  let prev;
  try {
    prev = await api("GET", "metrics");
  } catch (e) {
    note.textContent = e.message;
    return;
  }
  note.textContent = "sampled every 2 s from the broker's /metrics";
  let prevAt = performance.now();
  const s = { in: [], out: [], req: [], produce: [], fetch: [] };
  every(2000, async () => {
    let cur;
    try { cur = await api("GET", "metrics"); } catch (e) { note.textContent = e.message; return; }
    const now = performance.now();
    const dt = (now - prevAt) / 1000;
    const mean = (api) => {
      const n = cur[api + "_latency_count"] - prev[api + "_latency_count"];
      return n > 0 ? (cur[api + "_latency_seconds_sum"] - prev[api + "_latency_seconds_sum"]) / n * 1000 : 0;
    };
    push(s.in, (cur.received_bytes - prev.received_bytes) / dt);
    push(s.out, (cur.sent_bytes - prev.sent_bytes) / dt);
    push(s.req, (cur.requests - prev.requests) / dt);
    push(s.produce, mean("produce"));
    push(s.fetch, mean("fetch"));
    prev = cur;
    prevAt = now;
    chart("chart-throughput", "Network throughput", { in: s.in, out: s.out }, "B/s");
    chart("chart-requests", "Requests", { "requests/s": s.req }, "/s");
    chart("chart-latency", "Mean request latency", { produce: s.produce, "fetch (incl. long-poll wait)": s.fetch }, "ms");
  });
}

async function act(what, method, path, body, after) {
  try {
    await api(method, path, body);
    if (after) await after();
    notice(what + ": done", false);
  } catch (e) {
    notice(what + " failed: " + e.message, true);
  }
}

// ---- pages ----

async function clusterPage() {
  const c = await api("GET", "cluster");
  const brokers = c.brokers.map((b) =>
    `<tr data-node="${b.node_id}"><td class="num">${b.node_id}</td><td>${esc(b.host)}</td>` +
    `<td class="num">${b.port}</td><td>${esc(b.rack ?? "")}</td><td>${b.controller ? "yes" : ""}</td></tr>`);
  const dirs = c.log_dirs.map((d) =>
    `<tr><td class="num">${d.broker}</td><td>${esc(d.path)}</td><td>${esc(d.state)}</td>` +
    `<td class="num">${d.partitions}</td><td class="num" data-bytes="${d.size_bytes}">${bytes(d.size_bytes)}</td>` +
    `<td class="num">${bytes(d.usable_bytes)}</td><td class="num">${bytes(d.total_bytes)}</td></tr>`);
  view.innerHTML = `<h1>Cluster</h1>
    <p>Cluster id <code id="cluster-id">${esc(c.cluster_id)}</code>,
    controller <span id="controller">${c.controller_id}</span>,
    <span id="broker-count">${c.brokers.length}</span> broker(s).</p>
    <h2>Brokers</h2>${table("brokers", ["Id", "Host", "Port", "Rack", "Controller"], brokers)}
    <h2>Log dirs</h2>${table("log-dirs", ["Broker", "Path", "State", "Partitions", "Used", "Free", "Total"], dirs)}
    <h2>Live</h2><p id="metrics-note"></p>
    <div id="chart-throughput"></div><div id="chart-requests"></div><div id="chart-latency"></div>`;
  liveMetrics();
}

// A retention figure as Kafka means it: -1 unlimited, else ms or bytes.
function retention(v, unit) {
  if (v === null || v === undefined) return "-";
  if (v < 0) return "unlimited";
  if (unit === "bytes") return bytes(v);
  const units = [[86400000, "d"], [3600000, "h"], [60000, "min"], [1000, "s"]];
  for (const [ms, name] of units) if (v >= ms && v % ms === 0) return `${v / ms} ${name}`;
  return `${v} ms`;
}

async function topicsPage(params) {
  const page = Number(params.get("page") || 1);
  const filter = params.get("filter") || "";
  const q = new URLSearchParams({ page, filter });
  const t = await api("GET", "topics?" + q);
  const rows = t.topics.map((x) =>
    `<tr data-topic="${esc(x.name)}"><td><a href="#/topic/${encodeURIComponent(x.name)}">${esc(x.name)}</a>` +
    `${x.internal ? " (internal)" : ""}</td><td class="num">${x.partitions}</td>` +
    `<td class="num">${x.replication}</td><td class="num" data-bytes="${x.size_bytes}">${bytes(x.size_bytes)}</td>` +
    `<td class="num">${retention(x.retention_ms, "ms")}</td><td class="num">${retention(x.retention_bytes, "bytes")}</td></tr>`);
  const link = (p) => `#/topics?${new URLSearchParams({ page: p, filter })}`;
  view.innerHTML = `<h1>Topics</h1>
    <div id="notice" hidden></div>
    <div class="toolbar">
      <form id="filter-form" class="inline"><input id="filter" placeholder="filter by name" value="${esc(filter)}">
      <button>Filter</button></form>
      <span id="topic-total">${t.total}</span> topic(s), page <span id="page">${t.page}</span> of
      <span id="pages">${t.pages}</span>
      ${t.page > 1 ? `<a id="prev-page" href="${link(t.page - 1)}">previous</a>` : ""}
      ${t.page < t.pages ? `<a id="next-page" href="${link(t.page + 1)}">next</a>` : ""}
    </div>
    ${table("topics", ["Topic", "Partitions", "Replication", "Size", "Retention", "Retention size"], rows)}
    <h2>Create a topic</h2>
    <form id="create-form" class="inline">
      <input id="create-name" placeholder="name" required>
      <label>partitions <input id="create-partitions" type="number" value="1" min="1"></label>
      <label>replication <input id="create-replication" type="number" value="1" min="1"></label>
      <input id="create-configs" placeholder="key=value,key=value (optional)">
      <button id="create-btn">Create…</button>
    </form>`;
  document.getElementById("filter-form").onsubmit = (e) => {
    e.preventDefault();
    location.hash = `#/topics?${new URLSearchParams({ page: 1, filter: document.getElementById("filter").value })}`;
  };
  document.getElementById("create-form").onsubmit = (e) => {
    e.preventDefault();
    const name = document.getElementById("create-name").value.trim();
    const partitions = Number(document.getElementById("create-partitions").value);
    const replication = Number(document.getElementById("create-replication").value);
    const configs = {};
    for (const kv of document.getElementById("create-configs").value.split(",")) {
      const [k, ...v] = kv.split("=");
      if (k.trim()) configs[k.trim()] = v.join("=").trim();
    }
    confirmThen(`Create topic ${name} with ${partitions} partition(s), replication ${replication}?`,
      () => act(`Create topic ${name}`, "POST", "topics",
        { name, partitions, replication_factor: replication, configs }, () => topicsPage(params)));
  };
}

async function topicPage(name) {
  const t = await api("GET", "topics/" + encodeURIComponent(name));
  const parts = t.partitions.map((p) =>
    `<tr data-partition="${p.partition}"><td class="num">${p.partition}</td><td class="num">${p.leader}</td>` +
    `<td>${p.replicas.join(",")}</td><td>${p.isr.join(",")}</td>` +
    `<td class="num">${p.earliest ?? "-"}</td><td class="num">${p.latest ?? "-"}</td>` +
    `<td class="num" data-bytes="${p.size_bytes ?? ""}">${bytes(p.size_bytes)}</td><td>${esc(p.log_dir ?? "")}</td>` +
    `<td><a href="#/messages/${encodeURIComponent(name)}/${p.partition}">messages</a></td></tr>`);
  const configs = t.configs.map((c) =>
    `<tr data-config="${esc(c.name)}"><td>${esc(c.name)}</td>` +
    `<td>${c.sensitive ? "(sensitive)" : esc(c.value ?? "(null)")}</td><td>${esc(c.source)}</td></tr>`);
  view.innerHTML = `<h1>Topic <span id="topic-name">${esc(t.name)}</span></h1>
    <div id="notice" hidden></div>
    <p><span id="partition-count">${t.partitions.length}</span> partition(s), replication
    <span id="replication">${t.replication}</span>, size <span id="topic-size" data-bytes="${t.size_bytes}">${bytes(t.size_bytes)}</span>.</p>
    <h2>Partitions</h2>
    ${table("partitions", ["Partition", "Leader", "Replicas", "ISR", "Earliest", "Latest", "Size", "Log dir", ""], parts)}
    <div class="toolbar">
      <form id="config-form" class="inline">Set config <input id="config-key" placeholder="key">
        = <input id="config-value" placeholder="value"><button id="config-btn">Set…</button></form>
      <form id="partitions-form" class="inline">Partitions <input id="partitions-count" type="number"
        min="${t.partitions.length + 1}" value="${t.partitions.length + 1}"><button id="partitions-btn">Add…</button></form>
      <button id="delete-btn" class="danger">Delete topic…</button>
    </div>
    <div class="toolbar">
      <form id="records-form" class="inline">Delete records of partition
        <input id="records-partition" type="number" min="0" value="0"> before offset
        <input id="records-offset" type="number" min="0"><button id="records-btn">Delete…</button></form>
    </div>
    <h2>Configs</h2>${table("configs", ["Name", "Value", "Source"], configs)}`;
  const enc = encodeURIComponent(name);
  document.getElementById("config-form").onsubmit = (e) => {
    e.preventDefault();
    const key = document.getElementById("config-key").value.trim();
    const value = document.getElementById("config-value").value;
    confirmThen(`Set ${key}=${value} on ${name}?`, () =>
      act(`Set ${key}`, "POST", `topics/${enc}/configs`, { set: { [key]: value } }, () => topicPage(name)));
  };
  document.getElementById("partitions-form").onsubmit = (e) => {
    e.preventDefault();
    const count = Number(document.getElementById("partitions-count").value);
    confirmThen(`Grow ${name} to ${count} partitions? Keys will map to other partitions.`, () =>
      act("Add partitions", "POST", `topics/${enc}/partitions`, { count }, () => topicPage(name)));
  };
  document.getElementById("records-form").onsubmit = (e) => {
    e.preventDefault();
    const p = document.getElementById("records-partition").value;
    const offset = Number(document.getElementById("records-offset").value);
    confirmThen(`Delete the records of ${name}-${p} before offset ${offset}? This cannot be undone.`, () =>
      act("Delete records", "POST", `topics/${enc}/partitions/${p}/delete-records`, { offset }, () => topicPage(name)));
  };
  document.getElementById("delete-btn").onclick = () =>
    confirmThen(`Delete topic ${name} and all its records? This cannot be undone.`, () =>
      act(`Delete ${name}`, "DELETE", `topics/${enc}`, {}, async () => { location.hash = "#/topics"; }));
}

function shown(b, format) {
  if (b === null) return "<i>null</i>";
  if (format === "hex") return `<pre>${esc(b.hex)}</pre>`;
  if (format === "json") {
    try { return `<pre>${esc(JSON.stringify(JSON.parse(b.text), null, 2))}</pre>`; } catch (_) { /* not JSON */ }
  }
  return `<pre>${esc(b.text)}</pre>`;
}

async function messagesPage(name, partition, params) {
  const order = params.get("order") || "newest";
  const format = params.get("format") || "text";
  const q = new URLSearchParams({ order, limit: params.get("limit") || 20 });
  for (const k of ["offset", "timestamp"]) if (params.get(k)) q.set(k, params.get(k));
  const m = await api("GET", `topics/${encodeURIComponent(name)}/partitions/${partition}/messages?${q}`);
  const rows = m.messages.map((r) =>
    `<tr data-offset="${r.offset}"><td class="num">${r.offset}</td>` +
    `<td>${new Date(r.timestamp).toISOString()}</td><td class="key">${shown(r.key, format)}</td>` +
    `<td class="value">${shown(r.value, format)}</td>` +
    `<td class="headers">${r.headers.map((h) => `<div>${esc(h.key)}: ${shown(h.value, format)}</div>`).join("")}</td></tr>`);
  const opt = (v, cur) => `<option${v === cur ? " selected" : ""}>${v}</option>`;
  view.innerHTML = `<h1>Messages of <a href="#/topic/${encodeURIComponent(name)}">${esc(name)}</a>
    partition <span id="msg-partition">${partition}</span></h1>
    <p>Offsets <span id="earliest">${m.earliest}</span> to <span id="latest">${m.latest}</span>.</p>
    <form id="browse" class="toolbar">
      <label>from offset <input id="offset" type="number" value="${esc(params.get("offset") || "")}"></label>
      <label>or time (ms) <input id="timestamp" type="number" value="${esc(params.get("timestamp") || "")}"></label>
      <select id="order">${opt("newest", order)}${opt("oldest", order)}</select>
      <select id="format">${opt("text", format)}${opt("json", format)}${opt("hex", format)}</select>
      <button id="browse-btn">Show</button>
    </form>
    ${table("messages", ["Offset", "Timestamp", "Key", "Value", "Headers"], rows)}`;
  document.getElementById("browse").onsubmit = (e) => {
    e.preventDefault();
    const p = new URLSearchParams();
    for (const k of ["offset", "timestamp", "order", "format"]) {
      const v = document.getElementById(k).value;
      if (v) p.set(k, v);
    }
    location.hash = `#/messages/${encodeURIComponent(name)}/${partition}?${p}`;
  };
}

async function groupsPage() {
  const g = await api("GET", "groups");
  const rows = g.groups.map((x) =>
    `<tr data-group="${esc(x.group)}"><td><a href="#/group/${encodeURIComponent(x.group)}">${esc(x.group)}</a></td>` +
    `<td>${esc(x.state)}</td><td>${esc(x.protocol_type)}</td></tr>`);
  view.innerHTML = `<h1>Consumer groups</h1>${table("groups", ["Group", "State", "Protocol type"], rows)}`;
}

async function groupPage(name) {
  stopTimers(); // a redraw after a reset starts its own lag sampling
  const g = await api("GET", "groups/" + encodeURIComponent(name));
  const members = g.members.map((m) =>
    `<tr><td>${esc(m.member_id)}</td><td>${esc(m.client_id)}</td><td>${esc(m.host)}</td>` +
    `<td class="assignment">${m.assignment.map((a) => `${esc(a.topic)}: ${a.partitions.join(",")}`).join("; ")}</td></tr>`);
  const offsets = g.offsets.map((o) =>
    `<tr data-tp="${esc(o.topic)}-${o.partition}"><td>${esc(o.topic)}</td><td class="num">${o.partition}</td>` +
    `<td class="num">${o.committed}</td><td class="num">${o.log_end}</td><td class="num">${o.lag}</td></tr>`);
  view.innerHTML = `<h1>Group <span id="group-name">${esc(g.group)}</span></h1>
    <p>State <span id="group-state">${esc(g.state)}</span>, assignor
    <span id="group-protocol">${esc(g.protocol || "-")}</span>, <span id="member-count">${g.members.length}</span>
    member(s), total lag <span id="total-lag">${g.total_lag}</span>.</p>
    <h2>Members</h2>${table("members", ["Member", "Client id", "Host", "Assignment"], members)}
    <h2>Offsets</h2>${table("offsets", ["Topic", "Partition", "Committed", "Log end", "Lag"], offsets)}
    <div id="chart-lag"></div>
    <h2>Reset offsets</h2>
    <div id="notice" hidden></div>
    <form id="reset-form" class="inline">
      <input id="reset-topic" placeholder="TOPIC or TOPIC:0,1" required> to
      <select id="reset-to"><option>earliest</option><option>latest</option><option>offset</option>
        <option>datetime</option><option>shift-by</option></select>
      <input id="reset-value" placeholder="offset / ms / shift">
      <button id="reset-preview">Dry run</button>
    </form>
    <div id="reset-result"></div>`;
  const lag = [g.total_lag];
  chart("chart-lag", "Total lag, sampled every 5 s", { lag }, "records");
  every(5000, async () => {
    try {
      push(lag, (await api("GET", "groups/" + encodeURIComponent(name))).total_lag);
      chart("chart-lag", "Total lag, sampled every 5 s", { lag }, "records");
    } catch (_) { /* the next sample retries */ }
  });
  const path = `groups/${encodeURIComponent(name)}/reset-offsets`;
  const request = (execute) => ({
    topic: document.getElementById("reset-topic").value.trim(),
    to: document.getElementById("reset-to").value,
    value: document.getElementById("reset-value").value || null,
    execute,
  });
  document.getElementById("reset-form").onsubmit = async (e) => {
    e.preventDefault();
    const body = request(false);
    const out = document.getElementById("reset-result");
    try {
      const plan = await api("POST", path, body);
      const rows = plan.partitions.map((r) =>
        `<tr><td>${esc(r.topic)}</td><td class="num">${r.partition}</td>` +
        `<td class="num">${r.current ?? "-"}</td><td class="num">${r.new}</td></tr>`);
      out.innerHTML = `<p>Dry run: nothing changed yet.</p>
        ${table("reset-plan", ["Topic", "Partition", "Current", "New"], rows)}
        <button id="reset-execute" class="danger">Execute…</button>`;
      document.getElementById("reset-execute").onclick = () =>
        confirmThen(`Commit these ${plan.partitions.length} offset(s) for group ${name}?`, () =>
          act("Reset offsets", "POST", path, { ...body, execute: true }, () => groupPage(name)));
    } catch (err) {
      notice("Dry run failed: " + err.message, true);
    }
  };
}

async function route() {
  const hash = location.hash.slice(1) || "/cluster";
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  view.dataset.page = "loading";
  stopTimers();
  try {
    switch (parts[0]) {
      case "topics": await topicsPage(params); break;
      case "topic": await topicPage(parts[1]); break;
      case "messages": await messagesPage(parts[1], parts[2], params); break;
      case "groups": await groupsPage(); break;
      case "group": await groupPage(parts[1]); break;
      default: await clusterPage();
    }
    view.dataset.page = parts[0] || "cluster";
  } catch (e) {
    view.innerHTML = `<div class="error" id="page-error">${esc(e.message)}</div>`;
    view.dataset.page = "error";
  }
}

window.addEventListener("hashchange", route);
route();
