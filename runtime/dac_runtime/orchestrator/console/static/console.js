// The console's live parts, over server-sent events from the orchestrator: the workers table and an
// execution's output. Text goes in as text (never as HTML), so nothing an agent prints can run here.
"use strict";

function cell(row, text, attrs) {
  const td = document.createElement(attrs && attrs.header ? "th" : "td");
  if (attrs && attrs.header) td.scope = "row";
  if (attrs && attrs.state) { td.className = "state"; td.dataset.state = text; }
  if (attrs && attrs.href) {
    const a = document.createElement("a");
    a.href = attrs.href;
    a.textContent = text;
    td.appendChild(a);
  } else {
    td.textContent = text;
  }
  row.appendChild(td);
}

function ago(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 120) return s + " s";
  if (s < 7200) return Math.floor(s / 60) + " min";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
}

function liveWorkers(table) {
  const body = table.tBodies[0];
  const source = new EventSource(table.dataset.live);
  source.addEventListener("workers", (message) => {
    const workers = JSON.parse(message.data);
    const rows = document.createDocumentFragment();
    for (const w of workers) {
      const tr = document.createElement("tr");
      tr.dataset.worker = w.workerId;
      cell(tr, w.workerId, { header: true });
      cell(tr, w.state, { state: true });
      if (w.executionId) cell(tr, w.executionId, { href: "/console/executions/" + w.executionId });
      else cell(tr, "—");
      cell(tr, w.busySince ? ago(Date.now() / 1000 - w.busySince) : "—");
      cell(tr, w.place || "—");
      cell(tr, w.version || "");
      cell(tr, ago(w.lastSeenSecondsAgo) + " ago");
      rows.appendChild(tr);
    }
    if (!workers.length) {
      const tr = document.createElement("tr");
      cell(tr, "No worker has connected.");
      tr.firstChild.colSpan = 7;
      rows.appendChild(tr);
    }
    body.replaceChildren(rows);
  });
  source.onerror = () => { document.getElementById("live-state").textContent = "Live updates paused: reconnecting…"; };
  source.onopen = () => { document.getElementById("live-state").textContent = "Live: this table follows the workers as they change."; };
}

const TERMINAL = new Set(["completed", "failed", "cancelled", "timed_out"]);

function liveExecution(pre) {
  const events = document.getElementById("events");
  const lifecycle = document.getElementById("lifecycle");
  const status = document.getElementById("status");
  const source = new EventSource(pre.dataset.live);
  let seen = 0;
  const output = (message) => {
    const item = JSON.parse(message.data);
    if (item.seq <= seen) return;
    seen = item.seq;
    const span = document.createElement("span");
    span.className = message.type;
    span.textContent = item.chunk;
    pre.appendChild(span);
    pre.scrollTop = pre.scrollHeight;
  };
  source.addEventListener("stdout", output);
  source.addEventListener("stderr", output);
  source.addEventListener("event", (message) => {
    const item = JSON.parse(message.data);
    if (item.seq <= seen) return;
    seen = item.seq;
    const none = events.querySelector(".none");
    if (none) none.remove();
    const li = document.createElement("li");
    li.textContent = item.eventType + " " + JSON.stringify(item.payload || {});
    events.appendChild(li);
  });
  source.addEventListener("lifecycle", (message) => {
    const item = JSON.parse(message.data);
    const li = document.createElement("li");
    li.textContent = item.status + (item.reason ? " — " + item.reason : "") + (item.exitCode != null ? " (exit " + item.exitCode + ")" : "");
    lifecycle.appendChild(li);
    status.textContent = item.status;
    status.dataset.state = item.status;
    if (item.reason) document.getElementById("reason").textContent = item.reason;
    if (item.exitCode != null) document.getElementById("exit").textContent = item.exitCode;
    if (item.workerId) document.getElementById("worker").textContent = item.workerId;
    if (item.durationMs != null) document.getElementById("took").textContent = ago(item.durationMs / 1000);
    if (item.usage) {
      document.getElementById("tokens").textContent = (item.usage.inputTokens || 0) + " / " + (item.usage.outputTokens || 0);
      if (item.usage.costUsd != null) document.getElementById("cost").textContent = "$" + item.usage.costUsd.toFixed(4);
    }
    if (TERMINAL.has(item.status)) {
      source.close();
      const cancel = document.getElementById("cancel");
      if (cancel) cancel.remove();
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const workers = document.getElementById("workers");
  if (workers && workers.dataset.live) liveWorkers(workers);
  const output = document.getElementById("output");
  if (output && output.dataset.live) liveExecution(output);
});
