// The batch page's analytics panel (GET /v1/batches/{id}/analytics): duration percentiles,
// failed attempts by error class, retries, and throughput over time as an inline SVG chart.

import { api } from "./api.js";
import { errorText, fmtCount, fmtNumber, fmtTime, h, severityBadge } from "./ui.js";

const SVG = "http://www.w3.org/2000/svg";
const REFRESH_MS = 5000;

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

export function fmtSeconds(s) {
  if (s === null || s === undefined) return "–";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  return `${Math.floor(s / 60)}m ${String(Math.round(s % 60)).padStart(2, "0")}s`;
}

// Completed and failed jobs per bucket as stacked bars, jobs/s on the axis. Scales with its
// container (viewBox); the numbers are in the figure's description for screen readers.
export function throughputChart(throughput, width = 600) {
  const points = throughput.points || [];
  const height = 180;
  const pad = { left: 44, right: 8, top: 10, bottom: 26 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const bucket = throughput.bucket_s || 1;
  const peak = Math.max(...points.map((p) => (p.completed + p.failed) / bucket), 0.0001);
  const barW = plotW / Math.max(points.length, 1);
  const y = (rate) => pad.top + plotH - (rate / peak) * plotH;
  const best = points.reduce((a, p) => (p.jobs_per_s > a ? p.jobs_per_s : a), 0);
  const summary = `${points.length} buckets of ${bucket} s from ${fmtTime(points[0]?.at)} to ${fmtTime(points.at(-1)?.at)}; peak ${best.toFixed(1)} jobs/s`;
  const chart = svg(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": "tp-title tp-desc", class: "chart" },
    svg("title", { id: "tp-title" }, "Throughput over time"),
    svg("desc", { id: "tp-desc" }, summary),
  );
  for (const frac of [0, 0.5, 1]) {
    const at = y(peak * frac);
    chart.append(
      svg("line", { x1: pad.left, x2: width - pad.right, y1: at, y2: at, class: "grid-line" }),
      svg("text", { x: pad.left - 6, y: at + 4, "text-anchor": "end", class: "axis" }, `${(peak * frac).toFixed(peak * frac < 10 && frac ? 1 : 0)}/s`),
    );
  }
  points.forEach((p, i) => {
    const x = pad.left + i * barW + barW * 0.1;
    const w = Math.max(barW * 0.8, 1);
    const waiting = p.awaiting_decision || 0; // of the failed: parked for a decision, no error
    const okRate = p.completed / bucket;
    const badRate = (p.failed - waiting) / bucket;
    const waitRate = waiting / bucket;
    const okTop = y(okRate);
    const parked = waiting ? ` (${waiting} awaiting a decision)` : "";
    chart.append(
      svg("rect", { x, y: okTop, width: w, height: pad.top + plotH - okTop, class: "bar-ok" }, svg("title", {}, `${fmtTime(p.at)}: ${p.completed} completed, ${p.failed} failed${parked}`)),
    );
    const badTop = y(okRate + badRate);
    if (badRate > 0) {
      chart.append(svg("rect", { x, y: badTop, width: w, height: okTop - badTop, class: "bar-bad" }));
    }
    if (waitRate > 0) {
      const waitTop = y(okRate + badRate + waitRate);
      chart.append(svg("rect", { x, y: waitTop, width: w, height: badTop - waitTop, class: "bar-wait" }));
    }
  });
  const first = points[0];
  const last = points.at(-1);
  if (first) chart.append(svg("text", { x: pad.left, y: height - 6, class: "axis" }, fmtTime(first.at)));
  if (last && points.length > 1) chart.append(svg("text", { x: width - pad.right, y: height - 6, "text-anchor": "end", class: "axis" }, fmtTime(last.at)));
  return chart;
}

// The chart is drawn at its container's width in pixels, so its text keeps its size on a
// phone and on a wide screen; it is redrawn when the width changes.
function chartWidth(root) {
  return Math.max(280, Math.floor(root.clientWidth || 600) - 34);
}

const drawn = new WeakMap();
const resized = new ResizeObserver((entries) => {
  for (const entry of entries) {
    const last = drawn.get(entry.target);
    if (last && Math.abs(last.width - chartWidth(entry.target)) > 8) renderAnalytics(entry.target, last.data);
  }
});

export function renderAnalytics(root, data) {
  drawn.set(root, { data, width: chartWidth(root) });
  resized.observe(root);
  const d = data.durations;
  const facts = [
    ["Jobs timed", fmtNumber(d.count)],
    ["Min", fmtSeconds(d.min_s)],
    ["Mean", fmtSeconds(d.avg_s)],
    ["p50", fmtSeconds(d.p50_s)],
    ["p90", fmtSeconds(d.p90_s)],
    ["p95", fmtSeconds(d.p95_s)],
    ["p99", fmtSeconds(d.p99_s)],
    ["Max", fmtSeconds(d.max_s)],
  ];
  const errors = data.errors.length
    ? h(
        "table",
        { class: "errors-table" },
        h("caption", {}, "Failed attempts by error class"),
        h("thead", {}, h("tr", {}, h("th", {}, "Error class"), h("th", {}, "Severity"), h("th", { class: "num" }, "Attempts"), h("th", { class: "num" }, "Retryable"))),
        h("tbody", {}, data.errors.map((e) => h(
          "tr",
          {},
          h("td", {}, h("code", {}, e.error_class)),
          h("td", {}, e.severity ? severityBadge(e.severity) : "–"),
          h("td", { class: "num" }, fmtNumber(e.count)),
          h("td", { class: "num" }, fmtNumber(e.retryable)),
        ))),
      )
    : h("p", { class: "muted" }, "No failed attempts.");
  const r = data.retries;
  // what the job type counts (templates processed, duplicates removed...), live
  const results = Object.entries(data.metrics || {});
  root.replaceChildren(
    ...(results.length
      ? [h("dl", { class: "facts results", id: "a-results", "aria-label": "Results so far" },
        results.map(([k, v]) => h("div", {}, h("dt", {}, k.replaceAll("_", " ")), h("dd", {}, fmtNumber(v)))))]
      : []),
    h("dl", { class: "facts percentiles", id: "a-durations" }, facts.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v)))),
    h(
      "figure",
      { class: "chart-wrap" },
      data.throughput.points.length
        ? throughputChart(data.throughput, chartWidth(root))
        : h("p", { class: "muted" }, "No job has finished yet."),
      h("figcaption", { class: "muted small" }, "Jobs finished per second", h("span", { class: "key ok" }, "completed"), h("span", { class: "key bad" }, "failed"),
        (data.throughput.points || []).some((p) => p.awaiting_decision) ? h("span", { class: "key wait" }, "awaiting a decision") : null),
    ),
    h("div", { class: "analytics-cols" }, errors, h("p", { class: "retries" }, `${fmtCount(r.attempts, "attempt")} · ${fmtCount(r.retried_jobs, "job")} retried · ${fmtCount(r.extra_attempts, "extra attempt")}`)),
  );
}

// Keeps the panel current: `update(status)` on every batch change reads the analytics at most
// every few seconds while the batch runs, and once more when it has finished.
export function followAnalytics(batchId, root, isFinal) {
  let last = 0;
  let timer = null;
  let finalShown = false;
  async function load() {
    last = Date.now();
    try {
      renderAnalytics(root, await api(`/v1/batches/${batchId}/analytics`));
    } catch (error) {
      root.replaceChildren(h("p", { class: "muted" }, `Analytics unavailable: ${errorText(error)}`));
    }
  }
  return function update(status) {
    if (finalShown) return;
    if (isFinal(status)) {
      finalShown = true;
      clearTimeout(timer);
      // The job views can trail the batch's end by a moment: read again shortly after.
      load().then(() => setTimeout(load, 3000));
      return;
    }
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      load();
    }, Math.max(0, last + REFRESH_MS - Date.now()));
  };
}
