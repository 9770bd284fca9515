// The modelstream console: polls the stats service once a second and updates the page in place.
// "/" shows every data type; "/console/<data type>" shows one data type's model history.
"use strict";

const POLL_MS = 1000;
const state = { loadedAt: Date.now(), updates: 0, charts: {} };
window.modelstream = state;

const main = document.getElementById("main");
const statusLine = document.getElementById("status");
const number = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  node.append(...children);
  return node;
}

function figure(name, label) {
  return el("div", { class: "figure" }, el("b", { "data-figure": name }, "–"), el("span", {}, label));
}

function setFigure(root, name, text, value) {
  const node = root.querySelector(`[data-figure="${name}"]`);
  node.textContent = text;
  node.dataset.value = value === undefined ? text : String(value);
}

function time(ms) {
  return ms ? new Date(ms).toLocaleString() : "";
}

// A uPlot chart over the last minutes; series are [label, color] pairs. Replaces (and destroys) the chart
// registered under the same id.
function chart(id, parent, title, series) {
  dropChart(id);
  if (typeof uPlot === "undefined") {
    parent.append(el("p", { class: "error" }, "chart library missing: run `make setup`"));
    return null;
  }
  const options = {
    title, width: 520, height: 170,
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max, 1) * 1.1] } },
    axes: [{}, { values: (u, ticks) => ticks.map((v) => number.format(v)), size: 70 }],
    series: [{}, ...series.map(([label, stroke]) => ({ label, stroke, width: 2, spanGaps: false }))],
  };
  const plot = new uPlot(options, [[], ...series.map(() => [])], parent);
  state.charts[id] = plot;
  return plot;
}

function dropChart(id) {
  const plot = state.charts[id];
  if (plot) plot.destroy();
  delete state.charts[id];
}

const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];

function lagPanel() {
  const panel = el("section", { class: "panel wide", id: "lag" },
    el("h2", {}, "Consumer lag"),
    el("div", { class: "figures" }, figure("lag-total", "records behind (as of the last checkpoint)")),
    el("p", { class: "error", "data-lag-error": "" }));
  panel.charts = el("div", { class: "charts" });
  panel.append(panel.charts);
  panel.topics = null;
  return panel;
}

// The lag chart's series are the topics the history has a column for (every topic seen so far): the
// chart is rebuilt when they change, so setData always gets one column per series.
function updateLagChart(panel, history) {
  const topics = Object.keys(history).filter((key) => key !== "t");
  if (panel.topics !== topics.join("\u0000")) {
    panel.charts.replaceChildren();
    panel.plot = chart("lag", panel.charts, "records behind, per data topic",
      topics.map((topic, i) => [topic, COLORS[i % COLORS.length]]));
    panel.topics = topics.join("\u0000");
  }
  if (panel.plot) panel.plot.setData([history.t, ...topics.map((topic) => history[topic])]);
}

function dataTypePanel(dataType) {
  const panel = el("section", { class: "panel", "data-type": dataType },
    el("h2", {}, el("a", { href: "/console/" + encodeURIComponent(dataType), title: "model history" }, dataType),
      " ", el("span", { class: "drift", "data-drift": "" })),
    el("div", { class: "versions" }),
    el("div", { class: "figures" },
      figure("usage", "scored by the serving model"), figure("rate", "records/s"),
      figure("p50", "scoring p50 (ms)"), figure("p99", "scoring p99 (ms)")));
  const charts = el("div", { class: "charts" });
  panel.append(charts, el("ul", { class: "deadletters" }));
  panel.rate = chart("rate:" + dataType, charts, "records/s", [["records/s", COLORS[0]]]);
  panel.latency = chart("latency:" + dataType, charts, "scoring time (ms)",
    [["p50", COLORS[2]], ["p99", COLORS[1]]]);
  return panel;
}

// The serving version's drift status (docs/drift.md): nothing before its first complete window.
function showDrift(badge, drift) {
  const status = drift ? drift.status : "";
  badge.dataset.drift = status;
  badge.className = status ? "drift drift-" + status.toLowerCase() : "drift";
  badge.textContent = !status ? "" :
    `drift ${status}` + (drift.flagged.length ? `: ${drift.flagged.join(", ")}` : "");
}

function removePanel(dataType) {
  dropChart("rate:" + dataType);
  dropChart("latency:" + dataType);
  panels.get(dataType).remove();
  panels.delete(dataType);
}

function deadLetterItems(list, counts) {
  const items = Object.entries(counts).sort().map(([reason, n]) =>
    el("li", { "data-reason": reason }, `${reason}: ${n}`));
  list.replaceChildren(...items);
}

// The latest point of a series (null: unknown, or no point yet).
function latest(values) {
  return values.length ? values[values.length - 1] : null;
}

// data type -> its panel on the overview
const panels = new Map();

function renderOverview(data) {
  let lag = document.getElementById("lag");
  if (!lag) {
    lag = lagPanel();
    main.prepend(lag);
  }
  const total = data.lag ? data.lag.total : null;
  setFigure(lag, "lag-total", total === null ? "–" : number.format(total), total === null ? "" : total);
  lag.querySelector("[data-lag-error]").textContent = data.lag_error || "";
  updateLagChart(lag, data.lag_history);

  const shown = new Set(data.data_types.map((row) => row.data_type));
  for (const dataType of [...panels.keys()]) if (!shown.has(dataType)) removePanel(dataType);
  for (const row of data.data_types) {
    let panel = panels.get(row.data_type);
    if (!panel) {
      panel = dataTypePanel(row.data_type);
      panels.set(row.data_type, panel);
      main.append(panel);
    }
    panel.querySelector(".versions").replaceChildren(...row.serving.map((v) =>
      el("span", { class: "version " + v.role, "data-version": v.version, "data-share": v.share },
        `${v.model} ${v.version} · ${v.role} ${number.format(v.share)} %`)));
    panel.dataset.serving = row.serving.filter((v) => v.role === "served").map((v) => v.version).join(",");
    const h = row.history;
    const rate = latest(h.rate), p50 = latest(h.p50_ms), p99 = latest(h.p99_ms);
    setFigure(panel, "usage", number.format(row.usage), row.usage);
    setFigure(panel, "rate", rate === null ? "–" : number.format(rate), rate ?? "");
    setFigure(panel, "p50", p50 === null ? "–" : p50.toFixed(3), p50 ?? "");
    setFigure(panel, "p99", p99 === null ? "–" : p99.toFixed(3), p99 ?? "");
    deadLetterItems(panel.querySelector(".deadletters"), row.dead_letters);
    showDrift(panel.querySelector("[data-drift]"), row.drift);
    if (panel.rate) panel.rate.setData([h.t, h.rate]);
    if (panel.latency) panel.latency.setData([h.t, h.p50_ms, h.p99_ms]);
  }
  const others = Object.entries(data.other_dead_letters);
  let other = document.getElementById("other-dead-letters");
  if ((others.length || data.dead_letters_error) && !other) {
    other = el("section", { class: "panel", id: "other-dead-letters" },
      el("h2", {}, "Dead letters of no served data type"), el("ul", { class: "deadletters" }),
      el("p", { class: "error", "data-dead-letters-error": "" }));
    main.append(other);
  }
  if (other) {
    const counts = {};
    for (const [dataType, reasons] of others)
      for (const [reason, n] of Object.entries(reasons)) counts[`${dataType || "(none)"} ${reason}`] = n;
    deadLetterItems(other.querySelector(".deadletters"), counts);
    other.querySelector("[data-dead-letters-error]").textContent = data.dead_letters_error || "";
  }
  if (!data.data_types.length && !main.querySelector(".empty"))
    main.append(el("p", { class: "muted empty" }, "No data type has stats yet: publish a model and records."));
  if (data.data_types.length) main.querySelector(".empty")?.remove();
}

function renderHistory(dataType, detail) {
  document.getElementById("title").textContent = `${dataType}: model history`;
  const rows = [];
  const seen = new Set();
  for (const stats of [...(detail.versions || []), detail.current, ...(detail.history || [])]) {
    if (!stats || !stats.model) continue;
    const key = `${stats.model.name}\u0000${stats.model.version}\u0000${stats.model.since}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const ms = (ns) => (Number(ns || 0) / 1e6).toFixed(3);
    rows.push(el("tr", { "data-version": stats.model.version },
      el("td", {}, stats.model.name), el("td", {}, stats.model.version), el("td", {}, stats.model.model_type || ""),
      el("td", {}, stats.role || (stats.until ? "retired" : "served")),
      el("td", {}, time(Number(stats.model.since))), el("td", {}, time(Number(stats.until || 0))),
      el("td", { class: "n", "data-usage": stats.usage || 0 }, number.format(Number(stats.usage || 0))),
      el("td", { class: "n" }, ms(stats.avg_ns)), el("td", { class: "n" }, ms(stats.p99_ns)),
      el("td", { class: "n" }, String(stats.errors || 0))));
  }
  const head = ["model", "version", "type", "role", "since", "until", "usage", "avg ms", "p99 ms", "errors"];
  const table = el("table", {}, el("tr", {}, ...head.map((h, i) => el("th", i > 5 ? { class: "n" } : {}, h))),
    ...rows);
  main.replaceChildren(el("section", { class: "panel wide", id: "history" },
    el("h2", {}, `Models of ${dataType}`), table));
}

async function poll() {
  const path = location.pathname;
  try {
    const dataType = path.startsWith("/console/") ? decodeURIComponent(path.slice("/console/".length)) : null;
    const url = dataType === null ? "/api/console" : "/stats/" + encodeURIComponent(dataType);
    const response = await fetch(url, { cache: "no-store" });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    if (dataType === null) renderOverview(body); else renderHistory(dataType, body);
    state.updates += 1;
    statusLine.textContent = "updated " + new Date().toLocaleTimeString();
    statusLine.className = "";
  } catch (error) {
    statusLine.textContent = "stats service: " + error.message;
    statusLine.className = "error";
  }
  setTimeout(poll, POLL_MS);
}

poll();
