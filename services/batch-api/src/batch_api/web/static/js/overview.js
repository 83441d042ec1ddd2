// Overview: summary cards and the active batches, live from the /v1/events stream (or by
// polling GET /v1/batches where the server has no stream).

import { api, follow } from "./api.js";
import {
  $, ACTIVE, TERMINAL, WAITING, badge, errorText, failuresOf, fmtCount, fmtDuration, fmtNumber, fmtPercent, fmtTime, h, keepNewer,
  policyBadges, progressBar, restoredText, rollbackBar, startPage, takePolicy, toast,
} from "./ui.js";

const POLL_MS = 2000;
const LIST = 200; // the newest batches read for the cards and the lists
const OPEN = [...ACTIVE, ...WAITING].join(",");
const batches = new Map();
// True when batches of today may lie beyond the newest LIST: today's counts are then "N+".
let partial = false;
// True when more than LIST batches are open: the Active and Queued counts are then "N+".
let manyOpen = false;

function isToday(iso) {
  return !!iso && new Date(iso).toDateString() === new Date().toDateString();
}

function fact(name, value, cls = "") {
  return h("div", {}, h("dt", {}, name), h("dd", { class: cls }, value));
}

function activeCard(b) {
  const p = b.progress;
  const done = (p.completed || 0) + (p.failed || 0) + (p.skipped || 0) + (p.cancelled || 0);
  const rb = b.status === "rolling_back" ? b.rollback : null;
  let body;
  if (rb) {
    // rolling back: how far the undoing is, not the run (which ended)
    body = [
      rollbackBar(rb, `${b.name} rollback progress`),
      h(
        "dl",
        { class: "facts" },
        fact("Restored", restoredText(rb)),
        fact("Rollback", fmtPercent(rb.percent ?? 0), "pct"),
        fact("ETA", fmtDuration(rb.eta_s)),
        fact("Jobs/s", rb.throughput_per_s?.toFixed(1) ?? "–"),
        fact("Job type", b.job_type),
      ),
    ];
  } else {
    body = [
      progressBar(p, `${b.name} progress`),
      h(
        "dl",
        { class: "facts" },
        fact("Progress", fmtPercent(p.percent ?? 0), "pct"),
        fact("Jobs", `${fmtNumber(done)} / ${fmtNumber(p.total)}`),
        fact("ETA", b.status === "running" ? fmtDuration(p.eta_s) : "–"),
        fact("Errors", fmtNumber(p.failed), p.failed ? "bad" : ""),
        fact("Jobs/s", p.throughput_per_s ?? "–"),
        fact("Job type", b.job_type),
      ),
    ];
  }
  return h(
    "article",
    { class: "batch", id: `batch-${b.id}`, dataset: { status: b.status } },
    h(
      "header",
      {},
      h("a", { href: `/batches/${b.id}`, class: "name" }, b.name),
      h("span", { class: "badges" }, badge(b.status), ...policyBadges(b)),
    ),
    ...body,
  );
}

function recentRow(b) {
  const failures = failuresOf(b.progress);
  return h(
    "article",
    { class: "batch small", id: `batch-${b.id}` },
    h("a", { href: `/batches/${b.id}`, class: "name" }, b.name),
    badge(b.status),
    h("span", { class: "muted" }, [
      `${fmtNumber(b.progress.completed)} ok`,
      // a job parked for a person's decision is no error of the batch: said apart
      `${fmtNumber(failures.errors)} failed`,
      ...(failures.awaiting ? [`${fmtNumber(failures.awaiting)} awaiting a decision`] : []),
      ...(b.progress.skipped ? [`${fmtNumber(b.progress.skipped)} skipped`] : []),
      ...(b.progress.cancelled ? [`${fmtNumber(b.progress.cancelled)} cancelled`] : []),
      fmtTime(b.finished_at),
    ].join(" · ")),
  );
}

function render() {
  const all = [...batches.values()].sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
  const active = all.filter((b) => ACTIVE.has(b.status) || WAITING.has(b.status));
  const finished = all.filter((b) => TERMINAL.has(b.status)).slice(0, 5);
  const moreOpen = manyOpen ? "+" : "";
  $("#c-active").textContent = fmtNumber(all.filter((b) => ACTIVE.has(b.status)).length) + moreOpen;
  $("#c-queued").textContent = fmtNumber(all.filter((b) => WAITING.has(b.status)).length) + moreOpen;
  const more = partial ? "+" : "";
  $("#c-completed").textContent = fmtNumber(
    all.filter((b) => ["completed", "completed_with_errors"].includes(b.status) && isToday(b.finished_at)).length,
  ) + more;
  $("#c-failed").textContent = fmtNumber(
    all.filter((b) => b.status === "failed" && isToday(b.finished_at)).length,
  ) + more;
  for (const id of ["#c-completed", "#c-failed"]) {
    $(id).title = partial ? `counted among the newest ${LIST} batches; more were made today` : "";
  }
  const rate = all
    .filter((b) => b.status === "running")
    .reduce((sum, b) => sum + (b.progress.throughput_per_s || 0), 0);
  $("#c-rate").textContent = rate ? rate.toFixed(1) : "0";
  $("#active").replaceChildren(...active.map(activeCard));
  $("#active-empty").hidden = active.length > 0;
  $("#recent").replaceChildren(...finished.map(recentRow));
  $("#recent-empty").hidden = finished.length > 0;
}

async function loadOnce() {
  const recent = await api(`/v1/batches?limit=${LIST}`);
  // Beyond the newest LIST an older batch may still run or wait: those are asked for by
  // status (a filter that reads every batch's view's status, so only then).
  const open = recent.next_cursor ? await api(`/v1/batches?limit=${LIST}&status=${OPEN}`) : { items: [] };
  manyOpen = !!open.next_cursor;
  const shown = new Map(batches);
  batches.clear();
  for (const b of [...recent.items, ...open.items]) batches.set(b.id, keepNewer(b, shown.get(b.id)));
  const oldest = recent.items.at(-1);
  partial = !!recent.next_cursor && !!oldest && isToday(oldest.created_at);
  render();
}

// One read at a time: a read asked for while one runs is made once that one ends.
let loading = null;
let again = false;
function load() {
  if (loading) {
    again = true;
    return loading;
  }
  loading = (async () => {
    try {
      do {
        again = false;
        await loadOnce();
      } while (again);
    } finally {
      loading = null;
    }
  })();
  return loading;
}

// Re-reads the list 300 ms after an event about a batch not shown yet. A pending re-read is
// never pushed back: while events keep arriving faster than that, it must still happen.
let refetch = null;
function refetchSoon() {
  if (refetch) return;
  refetch = setTimeout(() => {
    refetch = null;
    load().catch((e) => toast(errorText(e), "error"));
  }, 300);
}

function onEvent(name, data) {
  const id = data && data.batch_id;
  if (!id) return;
  const known = batches.get(id);
  if (name === "rollback") {
    // once a second while one runs: shown on the batch's card; a batch not shown yet comes
    // with the list its status frame makes us read
    if (!known) return;
    const { batch_id: _, ...rollback } = data;
    known.rollback = rollback;
    render();
    return;
  }
  if (!known) {
    refetchSoon();
    return;
  }
  if (name === "progress") {
    const progress = takePolicy(known, data);
    known.progress = { ...known.progress, ...progress };
  } else if (name === "status") {
    known.status = data.status;
    if (TERMINAL.has(data.status)) refetchSoon();
  }
  render();
}

function poll() {
  const live = $("#live");
  live.textContent = "polling";
  setInterval(() => load().catch(() => (live.textContent = "offline, retrying")), POLL_MS);
}

const STATS_MS = 30_000;

// The strip under the cards: the tenant's batches created in the last 24 hours (GET /v1/stats).
async function loadStats() {
  let stats;
  try {
    stats = await api("/v1/stats");
  } catch {
    return; // the cards above still work; the strip keeps its dashes
  }
  $("#st-batches").textContent = fmtNumber(stats.batches);
  $("#st-completed").textContent = fmtNumber(stats.jobs_completed);
  $("#st-failed").textContent = fmtNumber(stats.jobs_failed);
  $("#st-failed").classList.toggle("bad", stats.jobs_failed > 0);
  $("#st-success").textContent = stats.success_rate === null ? "–" : fmtPercent(100 * stats.success_rate);
  const types = Object.entries(stats.job_types).sort((a, b) => b[1].batches - a[1].batches);
  $("#st-types").textContent = types.slice(0, 3).map(([name, t]) => `${name}: ${fmtCount(t.batches, "batch", "batches")}`).join(" · ");
}

if (startPage()) {
  load()
    .catch((error) => toast(errorText(error), "error"))
    .finally(() => {
      // After the cards: the stats read scans more, and the cards matter first.
      loadStats();
      setInterval(loadStats, STATS_MS);
      const live = $("#live");
      follow("/v1/events", onEvent, (state) => {
        if (state === "unavailable") poll();
        else live.textContent = state;
        live.classList.toggle("on", state === "live");
        if (state === "live") refetchSoon();
      });
    });
}
