// The console page: stations and the selected station's timeline, live from /api/events, and a command form.
// Everything a station sent is shown with textContent, never parsed as HTML.
"use strict";

const state = { stations: new Map(), rows: new Map(), selected: null, lastSeq: 0, catalogue: {}, events: null, chart: null, retry: null, retryDelay: 1000 };
const $ = (id) => document.getElementById(id);

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function clock(ms) {
  const d = new Date(ms);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function energy(wh) {
  return wh < 1000 ? `${Math.round(wh)} Wh` : `${(wh / 1000).toFixed(2)} kWh`;
}

function since(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

// Stations.

function renderStationRow(summary) {
  let row = state.rows.get(summary.id);
  if (!row) {
    row = document.createElement("tr");
    row.dataset.id = summary.id;
    row.addEventListener("click", () => select(summary.id));
    state.rows.set(summary.id, row);
  }
  row.className = (summary.connected ? "online" : "offline") + (summary.id === state.selected ? " selected" : "");
  row.replaceChildren();
  const dot = el("td"); dot.append(el("span", "", "dot")); dot.title = summary.connected ? "connected" : "disconnected";
  const name = el("td", summary.id);
  const boot = summary.boot || {};
  const connectors = Object.entries(summary.connectors || {}).map(([k, v]) => `${k}: ${v}`).join(", ");
  const tx = summary.transaction && summary.transaction.active ? ` · charging, ${energy(summary.transaction.energy_wh)}` : "";
  name.append(el("span", [boot.vendor, boot.model].filter(Boolean).join(" ") + (connectors ? ` · ${connectors}` : "") + tx, "sub"));
  row.append(dot, name, el("td", summary.protocol.replace("ocpp", "")), el("td", summary.gateway), el("td", since(summary.connected_since)));
  applyFilter(row);
}

function applyFilter(row) {
  const text = $("filter").value.trim().toLowerCase();
  row.hidden = Boolean(text) && !row.dataset.id.toLowerCase().includes(text);
}

function updateCounts() {
  const all = [...state.stations.values()];
  const online = all.filter((s) => s.connected).length;
  $("counts").textContent = `${online} connected · ${all.length - online} disconnected`;
}

function takeStations(summaries) {
  const before = state.rows.size;
  for (const summary of summaries) {
    state.stations.set(summary.id, summary);
    renderStationRow(summary);
    if (summary.id === state.selected) renderFacts(summary);
  }
  if (state.rows.size !== before) {
    const ids = [...state.rows.keys()].sort();
    $("stations").tBodies[0].append(...ids.map((id) => state.rows.get(id)));
  }
  updateCounts();
}

// The selected station.

function select(id) {
  if (state.selected === id) return;
  state.selected = id;
  history.replaceState(null, "", `#${encodeURIComponent(id)}`);
  for (const [rowId, row] of state.rows) row.classList.toggle("selected", rowId === id);
  $("timeline").tBodies[0].replaceChildren();
  $("answer").replaceChildren();
  state.lastSeq = 0;
  const summary = state.stations.get(id);
  if (summary) { renderFacts(summary); fillActions(summary.protocol); fillPayload(); }
  $("detail").hidden = false;
  $("empty").hidden = true;
  follow();
}

function renderFacts(summary) {
  $("station-title").textContent = summary.id;
  const boot = summary.boot || {};
  const facts = [
    ["State", summary.connected ? "connected" : "disconnected"],
    ["OCPP", summary.protocol],
    ["Gateway", summary.gateway],
    ["Connected since", since(summary.connected_since)],
    ["Vendor", boot.vendor], ["Model", boot.model], ["Firmware", boot.firmware], ["Boot", boot.status],
  ];
  for (const [k, v] of Object.entries(summary.connectors || {})) facts.push([`Connector ${k}`, v]);
  if (summary.transaction) {
    const t = summary.transaction;
    facts.push(["Transaction", `${t.id} ${t.active ? "running" : "ended"}, ${energy(t.energy_wh)}`]);
  }
  const list = $("station-facts");
  list.replaceChildren();
  for (const [k, v] of facts) {
    if (v === undefined || v === null || v === "") continue;
    const item = el("div"); item.append(el("dt", k), el("dd", v)); list.append(item);
  }
  if (!$("action").options.length) fillActions(summary.protocol);
}

function addEntry(entry) {
  const shown = $("timeline").querySelector(`tr[data-seq="${entry.seq}"]`);
  if (entry.seq <= state.lastSeq && !shown) return;
  state.lastSeq = Math.max(state.lastSeq, entry.seq);
  const kinds = { call: "CALL", send: "SEND", result: "CALLRESULT", error: "CALLERROR", connected: "connected", disconnected: "disconnected" };
  const arrow = entry.direction === "in" ? "station → CSMS" : entry.direction === "out" ? "CSMS → station" : "";
  const row = el("tr", null, `entry ${entry.direction === "event" ? "event" : ""} ${entry.kind === "error" ? "error" : ""}`);
  row.dataset.seq = String(entry.seq);
  row.dataset.time = String(entry.time_ms);
  row.dataset.kind = entry.kind;
  row.dataset.action = entry.action || "";
  const type = el("td");
  type.append(el("span", kinds[entry.kind] || entry.kind, `badge ${entry.kind === "error" ? "callerror" : ""}`));
  if (entry.by_gateway) type.append(el("span", "by gateway", "badge by-gateway"));
  if (entry.late) type.append(el("span", "late", "badge"));
  const detail = el("td", entry.error_code || (entry.direction === "event" ? entry.text : entry.message_id), "mono");
  row.append(el("td", clock(entry.time_ms), "mono"), el("td", arrow), type, el("td", entry.action || ""),
    el("td", entry.rtt_ms === null ? "" : `${entry.rtt_ms} ms`), detail);
  if (entry.direction !== "event") row.addEventListener("click", () => toggleJson(row, entry));
  if (shown) {
    const json = shown.nextElementSibling;
    if (json && json.classList.contains("json")) json.remove();
    shown.replaceWith(row);
    return;
  }
  const body = $("timeline").tBodies[0];
  let later = null;
  for (const other of body.rows) {
    if (other.classList.contains("json")) continue;
    if (Number(other.dataset.time) <= entry.time_ms) { later = other; break; }
  }
  body.insertBefore(row, later);
  const rows = $("timeline").tBodies[0].rows;
  while (rows.length > 400) rows[rows.length - 1].remove();
}

function toggleJson(row, entry) {
  const next = row.nextElementSibling;
  if (next && next.classList.contains("json")) { next.remove(); return; }
  const cell = el("td"); cell.colSpan = 6;
  let text = entry.text;
  try { if (!entry.truncated) text = JSON.stringify(JSON.parse(entry.text), null, 2); } catch (e) { /* shown as received */ }
  cell.append(el("pre", text + (entry.truncated ? "\n… (cut)" : "")));
  const holder = el("tr", null, "json"); holder.append(cell);
  row.after(holder);
}

// Meter values.

function renderTransaction(transaction) {
  const has = transaction && transaction.points && transaction.points.length;
  $("no-transaction").hidden = Boolean(has);
  $("transaction-title").textContent = transaction ? `${transaction.id} (${transaction.active ? "running" : "ended"}, ${energy(transaction.energy_wh)})` : "";
  const xs = has ? transaction.points.map((p) => p[0] / 1000) : [];
  const ys = has ? transaction.points.map((p) => p[1]) : [];
  $("chart").dataset.points = String(xs.length);
  if (!has) { if (state.chart) { state.chart.destroy(); state.chart = null; } return; }
  if (!state.chart) {
    const width = Math.max(300, $("meter").clientWidth - 10);
    state.chart = new uPlot({
      width, height: 220,
      scales: { x: { time: true } },
      axes: [{}, { label: "Wh", size: 60 }],
      series: [{}, { label: "Energy delivered (Wh)", stroke: "#1967d2", fill: "rgba(25,103,210,.08)", width: 2, points: { show: true, size: 5 } }],
    }, [xs, ys], $("chart"));
  } else {
    state.chart.setData([xs, ys]);
  }
}

// Commands.

function fillActions(protocol) {
  const entry = state.catalogue[protocol];
  const select = $("action");
  if (!entry || select.dataset.protocol === protocol) return;
  select.dataset.protocol = protocol;
  select.replaceChildren(...entry.actions.map((a) => el("option", a)));
  select.value = entry.actions[0];
  fillPayload();
}

function fillPayload() {
  const summary = state.stations.get(state.selected);
  if (!summary) return;
  const examples = (state.catalogue[summary.protocol] || {}).examples || {};
  let example = examples[$("action").value] || {};
  const transaction = summary.transaction;
  if (transaction && "transactionId" in example) {
    example = { ...example, transactionId: summary.protocol === "ocpp1.6" ? Number(transaction.id) : transaction.id };
  }
  $("payload").value = JSON.stringify(example, null, 2);
}

async function send(event) {
  event.preventDefault();
  const answer = $("answer");
  let payload;
  try { payload = JSON.parse($("payload").value || "{}"); } catch (e) {
    answer.replaceChildren(el("span", "payload is not JSON", "badge callerror"), el("pre", String(e.message)));
    return;
  }
  const action = $("action").value;
  $("send").disabled = true;
  answer.replaceChildren(el("span", `${action} sent, waiting for the answer…`));
  try {
    const response = await fetch(`/api/stations/${encodeURIComponent(state.selected)}/call`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ action, payload }),
    });
    const outcome = await response.json();
    answer.replaceChildren();
    answer.dataset.status = outcome.status || "refused";
    answer.append(el("span", outcome.status || `refused (${response.status})`, `badge ${outcome.status || "callerror"}`),
      el("span", outcome.explanation || outcome.error || ""));
    if (outcome.rtt_ms !== null && outcome.rtt_ms !== undefined) answer.append(el("span", ` · ${outcome.rtt_ms} ms`));
    if (outcome.answer) answer.append(el("pre", JSON.stringify(outcome.answer, null, 2)));
  } catch (e) {
    answer.replaceChildren(el("span", "not sent", "badge callerror"), el("span", ` ${e.message}`));
  } finally {
    $("send").disabled = false;
  }
}

// Live updates.

function follow() {
  if (state.events) state.events.close();
  clearTimeout(state.retry);
  const query = state.selected ? `?station=${encodeURIComponent(state.selected)}` : "";
  const events = new EventSource(`/api/events${query}`);
  state.events = events;
  events.addEventListener("open", () => { setLive(true); state.retryDelay = 1000; });
  events.addEventListener("error", () => {
    setLive(false);
    // The browser retries by itself after a dropped stream, but not after a refusal (too many pages): retry here.
    if (events.readyState === EventSource.CLOSED && state.events === events) {
      state.retry = setTimeout(follow, state.retryDelay);
      state.retryDelay = Math.min(state.retryDelay * 2, 30000);
    }
  });
  events.addEventListener("snapshot", (message) => {
    const snapshot = JSON.parse(message.data);
    takeStations(snapshot.stations);
    if (snapshot.view) {
      $("timeline").tBodies[0].replaceChildren();
      state.lastSeq = 0;
      for (const entry of snapshot.view.timeline) addEntry(entry); // oldest first: each goes on top
      renderTransaction(snapshot.view.transaction);
    }
    setLive(true);
  });
  events.addEventListener("update", (message) => {
    const update = JSON.parse(message.data);
    takeStations(update.stations);
    for (const entry of update.entries) addEntry(entry);
    if ("transaction" in update) renderTransaction(update.transaction);
  });
}

function setLive(on) {
  $("live").textContent = on ? "live" : "reconnecting";
  $("live").className = `live ${on ? "on" : "off"}`;
}

async function start() {
  state.catalogue = await (await fetch("/api/catalogue")).json();
  $("action").addEventListener("change", fillPayload);
  $("command").addEventListener("submit", send);
  $("filter").addEventListener("input", () => { for (const row of state.rows.values()) applyFilter(row); });
  const wanted = decodeURIComponent(location.hash.slice(1));
  if (wanted) select(wanted); else follow();
}

start();
