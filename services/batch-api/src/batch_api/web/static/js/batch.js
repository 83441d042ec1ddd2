// Batch detail: progress, the timeline, the jobs table and the actions. Live from
// /v1/batches/{id}/events (polling GET /v1/batches/{id} where the server has no stream).
// The report and the export are fetched only when asked for: a server without them answers
// 404, which the page says in words instead of logging an error on every load.

import { fmtSeconds, followAnalytics } from "./analytics.js";
import { ApiError, api, download, follow, mayOperate } from "./api.js";
import {
  $, $$, TERMINAL, badge, clearErrors, errorText, failuresOf, fieldError, fmtCount, fmtDuration, fmtNumber, fmtPercent, fmtTime, h, keepNewer,
  policyBadges, progressBar, restoredText, rollbackBar, severityBadge, startPage, statusLabel, takePolicy, toast, UNSUBMITTED,
} from "./ui.js";

const id = $("#batch").dataset.batchId;
const JOBS_PAGE = 25;
const COUNT_KEYS = ["total", "pending", "dispatched", "running", "completed", "failed", "retrying", "skipped", "cancelled"];
// Which actions make sense in which state (the server decides; this only avoids offering
// buttons that would be refused).
const ALLOWED = {
  start: UNSUBMITTED,
  pause: ["queued", "running", "retrying"],
  resume: ["paused"],
  cancel: ["draft", "uploading", "queued", "running", "paused", "retrying"],
  retry: ["completed_with_errors", "failed", "cancelled"],
  rollback: ["completed", "completed_with_errors", "failed", "cancelled", "rollback_failed"],
  duplicate: null,
  archive: [...TERMINAL],
  template: null,
  edit: null,
};

// Statuses a finished batch moves on to: `finished_at` keeps the time its run ended.
const AFTER_THE_RUN = new Set(["rolling_back", "rolled_back", "rollback_failed", "archived"]);

const ACTION_LABEL = { pause: "Pause", resume: "Resume", cancel: "Cancel", retry: "Retry of the failed jobs", archive: "Archive" };

let batch = null;
// Whether the batch's job type can be rolled back, from GET /v1/job-types (null until known:
// the button stays, and the dialog says why if the API refuses).
let rollbackSupported = null;
let shownStatus = null; // the status the timeline last showed
const timeline = [];
let jobCursors = [null];
let jobPage = 0;
const openDetails = new Set(); // indexes of the jobs whose details are shown
let stream = null;

function addTimeline(at, text, key) {
  if (!at || (key && timeline.some((t) => t.key === key))) return;
  timeline.push({ at, text, key });
  timeline.sort((a, b) => (a.at < b.at ? -1 : 1));
  $("#timeline").replaceChildren(
    ...timeline.map((t) => h("li", {}, h("time", { datetime: t.at }, fmtTime(t.at)), t.text)),
  );
}

function renderBatch() {
  const b = batch;
  const p = b.progress;
  const failures = failuresOf(p);
  document.title = `${b.name} · Batchyard`;
  $("#b-name").textContent = b.name;
  $("#b-meta").replaceChildren(...[
    h("code", {}, b.id),
    h("span", {}, b.job_type),
    h("span", {}, `priority ${b.priority}`),
    h("span", {}, `owner ${b.owner}`),
    b.tags.length ? h("span", {}, `tags ${b.tags.join(", ")}`) : null,
    b.visibility === "private"
      ? h("span", {}, b.shared_with?.length ? `private, shared with ${b.shared_with.join(", ")}` : "private")
      : null,
    b.template_id ? h("span", {}, "from template ", h("a", { href: `/templates#${b.template_id}` }, b.template_id)) : null,
    b.schedule_id ? h("span", {}, "run of schedule ", h("a", { href: `/schedules#${b.schedule_id}` }, b.schedule_id)) : null,
    b.duplicate_of ? h("span", {}, "copy of ", h("a", { href: `/batches/${b.duplicate_of}` }, b.duplicate_of)) : null,
    b.description ? h("span", {}, b.description) : null,
  ].filter(Boolean));
  $("#b-status").replaceChildren(badge(b.status), ...policyBadges(b));
  const bar = progressBar(p, "batch progress");
  bar.classList.add("big");
  $("#b-bar").replaceChildren(bar);
  const done = (p.completed || 0) + (p.failed || 0) + (p.skipped || 0) + (p.cancelled || 0);
  $("#b-facts").replaceChildren(
    ...[
      ["Done", fmtPercent(p.percent ?? 0), "pct"],
      ["Jobs", `${fmtNumber(done)} / ${fmtNumber(p.total)}`],
      // a job waiting for a person's decision is no error: said apart, not in red
      ["Errors", fmtNumber(failures.errors), failures.errors ? "bad" : ""],
      ...(failures.awaiting ? [["Awaiting decision", fmtNumber(failures.awaiting)]] : []),
      // lately (the pace its ETA goes at) while it has one; the whole run's mean otherwise
      ["Jobs/s", p.pace_per_s ?? p.throughput_per_s ?? "–"],
      ["Elapsed", fmtDuration(p.elapsed_s)],
      // Pauses (or the rest before a retry) are not in its rate and ETA: say how long it ran.
      ...(p.active_s != null && p.elapsed_s - p.active_s >= 1 ? [["Active", fmtDuration(p.active_s)]] : []),
      ["ETA", TERMINAL.has(b.status) ? "done" : fmtDuration(p.eta_s)],
      ["Avg job", p.average_job_ms == null ? "–" : fmtSeconds(p.average_job_ms / 1000)],
      ...(b.deadline || b.config.deadline
        ? [["Deadline", fmtTime(b.deadline || b.config.deadline), b.deadline_at_risk && !TERMINAL.has(b.status) ? "bad" : ""]]
        : []),
    ].map(([k, v, cls]) => h("div", {}, h("dt", {}, k), h("dd", { class: cls || null, id: `f-${k.toLowerCase().replace(/\W/g, "")}` }, v))),
  );
  $("#b-counts").replaceChildren(
    ...COUNT_KEYS.map((k) => h("div", {}, h("dt", {}, k), h("dd", {}, fmtNumber(p[k])))),
  );
  renderRollback(b.rollback);
  // Actions the batch's state does not allow are not offered at all.
  for (const button of $$("#actions [data-action]")) {
    const allowed = ALLOWED[button.dataset.action];
    button.hidden = allowed !== undefined && allowed !== null && !allowed.includes(b.status);
    button.disabled = false;
  }
  const retry = $('[data-action="retry"]');
  if (retry && !p.failed && !p.cancelled && !p.skipped) retry.hidden = true;
  if (rollbackSupported === false) $('[data-action="rollback"]').hidden = true;
  addTimeline(b.created_at, "Created", "created");
  addTimeline(b.started_at, "Started", "started");
  if (!b.finished_at) return;
  if (!AFTER_THE_RUN.has(b.status)) {
    addTimeline(b.finished_at, `Finished: ${statusLabel(b.status)}${b.reason ? ` (${b.reason})` : ""}`, `finished-${b.status}`);
  } else if (!timeline.some((t) => t.key?.startsWith("finished-"))) {
    // finished_at is still the run's end; how the run ended is no longer the status
    addTimeline(b.finished_at, "Finished", "finished-run");
  }
}

// The batch's latest rollback: how many of its jobs were restored, how fast, and how it ended.
function renderRollback(rb) {
  $("#b-rollback").hidden = !rb;
  if (!rb) return;
  $("#rollback-status").replaceChildren(badge(rb.status));
  $("#rollback-bar").replaceChildren(rollbackBar(rb, "rollback progress"));
  const running = rb.status === "rolling_back";
  $("#rollback-facts").replaceChildren(
    ...[
      ["Restored", restoredText(rb)],
      ["Done", fmtPercent(rb.percent ?? 0)],
      ["Jobs/s", rb.throughput_per_s?.toFixed(1) ?? "–"],
      running ? ["ETA", fmtDuration(rb.eta_s)] : ["Ended", fmtTime(rb.finished_at)],
      ...(rb.reason ? [["Why", rb.reason, "bad"]] : []),
    ].map(([k, v, cls]) => h("div", {}, h("dt", {}, k), h("dd", { class: cls || null, id: `rollback-${k.toLowerCase().replace(/\W/g, "")}` }, v))),
  );
}

const analytics = followAnalytics(id, $("#analytics"), (status) => TERMINAL.has(status) || status === "archived");

async function loadBatch() {
  batch = keepNewer(await api(`/v1/batches/${id}`), batch);
  shownStatus ??= batch.status;
  renderBatch();
  if (rollbackSupported === null) learnRollback(batch.job_type);
  analytics(batch.status);
  if (batch.job_type === "templates.consolidate") refreshConflicts();
  if (batch.config?.notifications?.length) refreshHooks();
}

// A job type whose executors keep no backups cannot be rolled back: the button is not offered.
let askedJobTypes = false;
function learnRollback(jobType) {
  if (askedJobTypes) return;
  askedJobTypes = true;
  api("/v1/job-types")
    .then((types) => {
      const type = types.find((t) => t.name === jobType);
      if (!type) return; // no executor announced it (yet): leave the button to the dialog
      rollbackSupported = Boolean(type.supports_rollback);
      if (batch) renderBatch();
    })
    .catch(() => { askedJobTypes = false; }); // asked again on the next load
}

// The batch's webhook notices (GET /v1/batches/{id}/webhooks), read again at most every 2 s.
let hooksAt = 0;
function refreshHooks() {
  if (Date.now() - hooksAt < 2000) return;
  hooksAt = Date.now();
  api(`/v1/batches/${id}/webhooks`)
    .then((deliveries) => {
      $("#hooks-section").hidden = false;
      $("#hooks").replaceChildren(
        ...(deliveries.length
          ? deliveries.map((d) =>
            h("tr", {},
              h("td", {}, d.event.replace("batch.", "")),
              h("td", {}, h("code", {}, d.url)),
              h("td", {}, h("span", { class: `badge s-${{ delivered: "completed", failed: "failed" }[d.status] || "pending"}` }, d.status)),
              h("td", { class: "num" }, String(d.attempts)),
              h("td", {}, d.last_error || (d.last_status_code ? `HTTP ${d.last_status_code}` : "–")),
            ))
          : [h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No notice is due yet."))]),
      );
      // a notice still being delivered (or none yet for a finished batch): look again
      if (deliveries.some((d) => d.status === "pending") || (!deliveries.length && TERMINAL.has(batch.status))) {
        setTimeout(refreshHooks, 2100);
      }
    })
    .catch(() => {});
}

// Conflicts a consolidation parked for a person: same name, different bodies. Read again
// only when the batch's status or failure count changes (a parked job fails until decided).
let conflictsKey = null;
function refreshConflicts() {
  const key = `${batch.status}:${batch.progress.failed}`;
  if (key === conflictsKey) return;
  conflictsKey = key;
  loadConflicts().catch((error) => toast(errorText(error), "error"));
}

async function loadConflicts() {
  const waiting = await api(`/v1/library/conflicts?batch_id=${encodeURIComponent(id)}&status=awaiting_decision`);
  $("#conflicts-section").hidden = waiting.length === 0;
  const cards = await Promise.all(waiting.map(conflictCard));
  $("#conflicts").replaceChildren(...cards);
}

async function conflictCard(conflict) {
  const templates = await Promise.all(
    conflict.template_ids.map((tid) => api(`/v1/library/templates/${encodeURIComponent(tid)}`).catch(() => ({ id: tid }))),
  );
  const options = templates.map((t) =>
    h("li", { class: "conflict-option" },
      h("div", { class: "meta" }, h("code", {}, t.id), t.category ? h("span", {}, t.category) : null,
        t.updated_at ? h("span", {}, `updated ${fmtTime(t.updated_at)}`) : null),
      h("pre", { class: "body-preview" }, (t.body ?? "(not found)").slice(0, 600)),
      mayOperate()
        ? h("button", { type: "button", onclick: (ev) => decide(conflict, t.id, ev.currentTarget) }, `Keep ${t.id}`)
        : null,
    ),
  );
  return h("article", { class: "card conflict", "aria-label": `Conflict over the name ${conflict.name}` },
    h("h3", {}, `“${conflict.name}”`, h("span", { class: "muted" }, ` · ${conflict.template_ids.length} templates · job ${conflict.job_id}`)),
    h("ul", { class: "conflict-options" }, ...options),
  );
}

async function decide(conflict, keep, button) {
  button.disabled = true;
  try {
    const before = batch.status;
    await api(`/v1/library/conflicts/${encodeURIComponent(conflict.id)}/decision`, { method: "POST", body: { keep } });
    toast(`Decided: ${keep} keeps the name “${conflict.name}”; its job runs again.`, "ok");
    addTimeline(new Date().toISOString(), `conflict “${conflict.name}” decided`, null);
    conflictsKey = null;
    await loadConflicts();
    watchFinished(before);
  } catch (error) {
    toast(errorText(error), "error");
    button.disabled = false;
  }
}

function jobDetail(job) {
  const attempts = (job.attempts || []).map(
    (a) => `#${a.attempt} ${a.status || ""} on ${a.executor || "?"} ${a.started_at ? fmtTime(a.started_at) : ""}${a.error ? ` — ${a.error.class || ""}: ${a.error.message || ""}` : ""}`,
  );
  const text = [
    job.error ? `Error: ${job.error.class}: ${job.error.message} (${[job.error.retryable ? "retryable" : "permanent", job.error.severity && `severity ${job.error.severity}`].filter(Boolean).join(", ")})` : "No error.",
    job.skip_reason ? `Skipped: ${job.skip_reason}` : null,
    job.warnings?.length ? `Warnings:\n  ${job.warnings.join("\n  ")}` : null,
    job.resources ? `Worker process: ${job.resources.cpu_s} CPU s, peak ${job.resources.max_rss_mb} MB resident` : null,
    job.error?.traceback || null, // "Traceback (most recent call last): ..."
    job.progress ? `Progress: ${progressText(job.progress)} (reported ${fmtTime(job.progress.at)})` : null,
    attempts.length ? `Attempts:\n  ${attempts.join("\n  ")}` : null,
    `Item: ${JSON.stringify(job.item)}`,
    job.output ? `Output: ${JSON.stringify(job.output)}` : null,
  ].filter(Boolean).join("\n");
  return h("tr", { class: "detail", id: `job-detail-${job.index}` }, h("td", { colspan: 6 }, h("pre", {}, text)));
}

// A completed job's warnings in a line: "⚠ the file is empty (+1 more)".
function warningsText(warnings) {
  return `⚠ ${warnings[0]}${warnings.length > 1 ? ` (+${warnings.length - 1} more)` : ""}`;
}

// What a running job last said of its progress: "40% · step 2 of 5" (either part may be absent).
function progressText(progress) {
  if (!progress) return "";
  const percent = progress.percent === null || progress.percent === undefined ? null : `${Math.round(progress.percent)}%`;
  return [percent, progress.message || null].filter(Boolean).join(" · ");
}

function jobRow(job) {
  // a failed job parked for a person's decision is shown as waiting, not as an error
  const shown = job.awaiting_decision ? "awaiting_decision" : job.status;
  const toggle = h("button", { type: "button", class: "link", "aria-expanded": "false", "aria-controls": `job-detail-${job.index}` }, "Details");
  const row = h(
    "tr",
    { id: `job-${job.index}`, dataset: { status: shown } },
    h("td", {}, job.index),
    h("td", {}, job.rolled_back_at
      // it ran (completed) and a rollback undid what it changed
      ? h("span", { class: "badges" }, badge(job.status),
        h("span", { class: "badge s-rolled_back", title: `rolled back ${fmtTime(job.rolled_back_at)}` }, "rolled back"))
      : badge(shown)),
    h("td", { class: "num" }, job.attempt ?? "–"),
    h("td", { class: "num" }, job.duration_s === null || job.duration_s === undefined ? "–" : `${job.duration_s.toFixed(2)}s`),
    job.awaiting_decision && job.error
      ? h("td", { class: "warn" }, job.error.message)
      : job.error
      ? h("td", { class: "bad" }, job.error.severity ? [severityBadge(job.error.severity), " "] : null, `${job.error.class}: ${job.error.message}`)
      : job.skip_reason
        ? h("td", { class: "muted" }, job.skip_reason)
        : job.warnings?.length
          ? h("td", { class: "warn", title: job.warnings.join("\n") }, warningsText(job.warnings))
        : h("td", { class: "muted", title: job.progress ? `reported ${fmtTime(job.progress.at)}` : null }, progressText(job.progress)),
    h("td", {}, toggle),
  );
  const show = (open) => {
    toggle.setAttribute("aria-expanded", String(open));
    $(`#job-detail-${job.index}`)?.remove();
    if (open) row.after(jobDetail(job));
  };
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    if (open) openDetails.add(job.index);
    else openDetails.delete(job.index);
    show(open);
  });
  row.reopen = () => openDetails.has(job.index) && show(true);
  return row;
}

async function loadJobs() {
  const status = $("#job-status").value;
  const cursor = jobCursors[jobPage];
  const query = new URLSearchParams({ limit: String(JOBS_PAGE) });
  if (status) query.set("status", status);
  if (cursor) query.set("cursor", cursor);
  let page;
  try {
    page = await api(`/v1/batches/${id}/jobs?${query}`);
  } catch (error) {
    $("#jobs").replaceChildren();
    $("#jobs-empty").hidden = false;
    $("#jobs-empty").textContent = error.status === 404 ? "This server does not list jobs yet." : errorText(error);
    return;
  }
  const rows = page.items.map(jobRow);
  $("#jobs").replaceChildren(...rows);
  for (const row of rows) row.reopen(); // a refresh keeps the details that were open
  $("#jobs-empty").hidden = page.items.length > 0;
  $("#jobs-empty").textContent = "No jobs to show.";
  jobCursors[jobPage + 1] = page.next_cursor;
  $("#jobs-prev").disabled = jobPage === 0;
  $("#jobs-next").disabled = !page.next_cursor;
  $("#jobs-page").textContent = `page ${jobPage + 1}`;
  // a job reporting progress may say more before any event about the batch comes
  if (page.items.some((job) => job.status === "running" && job.progress)) refreshJobsLater();
}

// The jobs table re-reads at most once per delay: a pending refresh is never pushed back, so
// a steady stream of events (failures, progress) cannot postpone it forever.
let jobsTimer = null;
let jobsDue = 0;
function refreshJobsIn(delay) {
  const due = Date.now() + delay;
  if (jobsTimer && jobsDue <= due) return;
  clearTimeout(jobsTimer);
  jobsDue = due;
  jobsTimer = setTimeout(() => {
    jobsTimer = null;
    loadJobs();
  }, delay);
}

// After a status change or a failure: soon.
function refreshJobsSoon() {
  refreshJobsIn(800);
}

// While jobs finish, the table follows at most every few seconds (one page of 25 jobs).
function refreshJobsLater() {
  refreshJobsIn(3000);
}

const NOT_BUILT = "This server does not produce reports and exports yet (it answered 404).";

function unavailable(error) {
  return error instanceof ApiError && error.status === 404 ? NOT_BUILT : errorText(error);
}

// The report's headline figures, shown under the progress once a report has been fetched.
function renderMetrics(report) {
  const metricTotals = report.metrics || {};
  const rows = [
    ["Success rate", report.success_rate === undefined ? "–" : fmtPercent(100 * report.success_rate)],
    ["Avg duration", report.avg_duration_s === undefined ? "–" : fmtDuration(report.avg_duration_s)],
    ["p50", report.p50_duration_s === undefined ? "–" : `${Number(report.p50_duration_s).toFixed(2)}s`],
    ["p95", report.p95_duration_s === undefined ? "–" : `${Number(report.p95_duration_s).toFixed(2)}s`],
    ...(report.resources
      ? [["Worker CPU", `${fmtNumber(report.resources.cpu_s)} s`], ["Worker peak memory", `${fmtNumber(report.resources.max_rss_mb)} MB`]]
      : []),
    ...(report.warned_jobs
      ? [["Warnings", `${fmtNumber(report.warnings_count)} in ${fmtNumber(report.warned_jobs)} job${report.warned_jobs > 1 ? "s" : ""}`]]
      : []),
    ...Object.entries(metricTotals)
      .filter(([, v]) => v === null || typeof v !== "object")
      .map(([k, v]) => [k.replaceAll("_", " "), typeof v === "number" ? fmtNumber(v) : String(v)]),
  ];
  $("#metrics").replaceChildren(...rows.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v))));
  $("#metrics-section").hidden = false;
}

async function act(action, body) {
  return api(`/v1/batches/${id}/actions/${action}`, { method: "POST", body: body || {} });
}

async function onAction(button) {
  const action = button.dataset.action;
  if (action === "rollback") return openRollback();
  if (action === "report") return openReport();
  if (action === "template") return openTemplate();
  if (action === "edit") return openEdit();
  if (action === "export") {
    return download(`/v1/batches/${id}/export`, `${id}.zip`).catch((e) => toast(unavailable(e), "error"));
  }
  if (action === "cancel" && !confirm("Cancel this batch? Jobs not yet finished will not run.")) return;
  button.disabled = true;
  try {
    const result = await act(action);
    if (action === "duplicate") {
      toast("Duplicated.", "ok");
      location.assign(`/batches/${result.id}`);
      return;
    }
    const now = statusLabel(result.status);
    toast(`${ACTION_LABEL[action] || statusLabel(action)} requested; the batch is ${now} for now.`, "ok");
    addTimeline(new Date().toISOString(), `${action} requested`, null);
    const before = batch.status;
    await loadBatch();
    listen();
    watchFinished(before);
  } catch (error) {
    toast(errorText(error), "error");
    renderBatch();
  }
}

function planView(plan) {
  if (!plan || !Array.isArray(plan.jobs)) return [h("pre", {}, JSON.stringify(plan, null, 2))];
  const shown = plan.jobs.slice(0, 20);
  return [
    h("p", { id: "rb-count" }, plan.count
      ? `${fmtCount(plan.count, "completed job")} would be compensated, most recent first.`
      : "No completed job would be compensated."),
    shown.length
      ? h("ul", { class: "plan" }, shown.map((j) => h("li", {}, h("code", {}, j.job_id), j.finished_at ? ` finished ${fmtTime(j.finished_at)}` : "")))
      : null,
    plan.truncated || plan.jobs.length > shown.length ? h("p", { class: "muted" }, "…and more.") : null,
  ];
}

// The rollback service's check of the dry run (checksums, changes made after a job): polled
// while the dialog is open, then said in words. The plan can be confirmed before it ends.
let checkTimer = null;
function followCheck(checkId) {
  clearTimeout(checkTimer);
  const line = $("#rb-check");
  line.className = "muted";
  line.replaceChildren("Checking the backups and what changed since the batch…");
  if (!checkId) return line.replaceChildren();
  const began = Date.now();
  const poll = async () => {
    if (!$("#rollback-dialog").open) return;
    let check = null;
    try {
      check = await api(`/v1/batches/${id}/rollback-checks/${checkId}`);
    } catch {
      // asked again below
    }
    if (check && check.status !== "checking") return showCheck(check);
    if (Date.now() - began > 60_000) {
      line.replaceChildren("The check has not ended yet; the rollback makes it again before it changes anything.");
      return;
    }
    checkTimer = setTimeout(poll, 500);
  };
  checkTimer = setTimeout(poll, 300);
}

function showCheck(check) {
  const line = $("#rb-check");
  if (check.status === "clear") {
    line.className = "ok";
    line.replaceChildren(`Checked: the rollback would restore ${fmtCount(check.jobs ?? 0, "job")}.`);
    return;
  }
  line.className = "bad";
  const named = (check.refused || []).map((r) => h("li", {}, h("code", {}, r.job_id), ` ${r.reason}`));
  const more = check.refused_total > named.length ? ` (${fmtCount(check.refused_total, "job")} in all)` : "";
  line.replaceChildren(
    named.length
      ? `Checked: the rollback would be refused and restore nothing${more}:`
      : `Checked: the rollback would be refused and restore nothing: ${check.reason || ""}`,
    named.length ? h("ul", { class: "plan" }, named) : "",
  );
}

async function openRollback() {
  const dialog = $("#rollback-dialog");
  const confirmButton = $("#rb-confirm");
  confirmButton.disabled = true;
  $("#rb-force").checked = false;
  $("#rb-plan").replaceChildren(h("p", { class: "muted" }, "Preparing the plan…"));
  $("#rb-check").replaceChildren();
  dialog.showModal();
  try {
    const result = await act("rollback", { dry_run: true, job_ids: null });
    $("#rb-plan").replaceChildren(...[planView(result.plan)].flat().filter(Boolean));
    followCheck(result.plan?.check_id);
    confirmButton.disabled = false;
    confirmButton.focus();
  } catch (error) {
    $("#rb-plan").replaceChildren(h("p", { class: "error", role: "alert" }, errorText(error)));
  }
}

async function confirmRollback() {
  const confirmButton = $("#rb-confirm");
  confirmButton.disabled = true;
  try {
    const before = batch.status;
    await act("rollback", { dry_run: false, job_ids: null, force: $("#rb-force").checked });
    $("#rollback-dialog").close();
    toast("Rollback started.", "ok");
    addTimeline(new Date().toISOString(), "rollback requested", null);
    await loadBatch();
    watchFinished(before);
  } catch (error) {
    $("#rb-plan").append(h("p", { class: "error", role: "alert" }, errorText(error)));
  }
}

// The report in words: totals per job state, rates and durations, the job type's metric
// totals, and the failed jobs with their reasons (the first 50; the CSV has every job).
function reportView(report) {
  const pct = (v) => (v === null || v === undefined ? "–" : fmtPercent(100 * v));
  const secs = (v) => (v === null || v === undefined ? "–" : `${Number(v).toFixed(2)} s`);
  const facts = [
    ["Status", statusLabel(report.status)],
    ["Success rate", pct(report.success_rate)],
    ["Average duration", secs(report.avg_duration_s)],
    ["Median (p50)", secs(report.p50_duration_s)],
    ["p95", secs(report.p95_duration_s)],
    ...Object.entries(report.totals || {}).map(([k, v]) => [k === "total" ? "Jobs" : statusLabel(k), fmtNumber(v)]),
    ...Object.entries(report.metrics || {}).map(([k, v]) => [k.replaceAll("_", " "), typeof v === "number" ? fmtNumber(v) : String(v)]),
  ];
  const view = [h("dl", { class: "review", id: "report-facts" }, facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))];
  const failed = report.failed_jobs || [];
  if (failed.length) {
    const more = (report.failed_count || failed.length) - Math.min(failed.length, 50);
    view.push(
      h("h3", {}, `Failed jobs (${fmtNumber(report.failed_count || failed.length)})`),
      h("div", { class: "table-wrap" },
        h("table", { id: "report-failed" },
          h("thead", {}, h("tr", {}, h("th", {}, "Job"), h("th", { class: "num" }, "Attempt"), h("th", {}, "Error"))),
          h("tbody", {}, failed.slice(0, 50).map((f) =>
            h("tr", {}, h("td", {}, h("code", {}, f.job_id)), h("td", { class: "num" }, String(f.attempt)),
              h("td", {}, `${f.error_class || "error"}: ${f.error_message || ""}`)))),
        ),
      ),
      more > 0 ? h("p", { class: "muted" }, `and ${fmtNumber(more)} more: download the CSV for every job.`) : null,
    );
  }
  return view.filter(Boolean);
}

async function openReport() {
  const dialog = $("#report-dialog");
  $("#report-body").replaceChildren(h("p", { class: "muted" }, "Loading…"));
  $("#report-csv").hidden = false;
  dialog.showModal();
  try {
    const report = await api(`/v1/batches/${id}/report`);
    renderMetrics(report);
    $("#report-body").replaceChildren(...reportView(report));
  } catch (error) {
    $("#report-csv").hidden = error instanceof ApiError && error.status === 404;
    $("#report-body").replaceChildren(h("p", { class: "error", role: "alert" }, unavailable(error)));
  }
}

function onEvent(name, data) {
  if (!batch) return;
  if (name === "progress") {
    const progress = takePolicy(batch, data);
    batch.progress = { ...batch.progress, ...progress };
    renderBatch();
    analytics(batch.status);
    refreshJobsLater();
  } else if (name === "status") {
    // Every (re)connection opens with the current status: only a change goes on the timeline.
    const changed = data.status !== shownStatus;
    shownStatus = data.status;
    batch.status = data.status;
    if (changed && !TERMINAL.has(data.status)) {
      addTimeline(new Date().toISOString(), `${statusLabel(data.status)}${data.reason ? ` (${data.reason})` : ""}`, null);
    }
    renderBatch();
    refreshJobsSoon();
    if (TERMINAL.has(data.status)) loadBatch().catch(() => {});
  } else if (name === "rollback") {
    const { batch_id, ...rollback } = data;
    batch.rollback = rollback;
    renderRollback(rollback);
    refreshJobsLater();
  } else if (name === "job_failed") {
    refreshJobsSoon();
  } else if (name === "end") {
    loadBatch().catch(() => {});
    refreshJobsSoon();
  }
}

// The stream of a finished batch ends at once, yet the batch can move on: a retry or a rollback
// asked for on this page, on another one or from the CLI shows only by reading the batch again
// (the page may also have opened before the reporter projected such a request). So a finished
// batch is re-read every 2 s for a minute after its stream ended or an action here, then every
// 10 s while the page is open and visible; once it moves on, the page follows its stream again
// while it is active (retrying, rolling back), or shows the new final status and keeps watching.
let watchTimer = null;
function watchFinished(fromStatus = batch.status) {
  clearTimeout(watchTimer);
  if (!TERMINAL.has(fromStatus)) return; // it was active: its stream is followed
  let from = { status: fromStatus, seq: batch.seq ?? 0 };
  const began = Date.now();
  const next = async () => {
    try {
      if (!document.hidden) await loadBatch();
    } catch {
      // the next try reads again
    }
    if (batch.status !== from.status || (batch.seq ?? 0) > from.seq) {
      if (batch.status !== from.status) addTimeline(new Date().toISOString(), statusLabel(batch.status), null);
      refreshJobsSoon();
      if (!TERMINAL.has(batch.status)) {
        listen();
        return;
      }
      from = { status: batch.status, seq: batch.seq ?? 0 };
    }
    watchTimer = setTimeout(next, Date.now() - began < 60_000 ? 2000 : 10_000);
  };
  watchTimer = setTimeout(next, 2000);
}

// "Save as template…": POST /v1/templates/from-batch, then a link to the templates page.
function openTemplate() {
  const f = $("#template-form");
  clearErrors(f);
  f.name.value = `${batch.name} template`.slice(0, 200);
  $("#template-dialog").showModal();
  f.name.select();
}

async function saveTemplate(event) {
  event.preventDefault();
  const f = event.currentTarget;
  clearErrors(f);
  try {
    const created = await api("/v1/templates/from-batch", {
      method: "POST",
      body: {
        batch_id: id,
        name: f.name.value.trim(),
        category: f.category.value.trim(),
        with_items: f.with_items.checked,
        visibility: f.tenant.checked ? "tenant" : "private",
      },
    });
    $("#template-dialog").close();
    toast(h("span", {}, "Saved as template ", h("a", { href: `/templates#${created.id}` }, created.name), "."), "ok");
  } catch (error) {
    const first = error.problem?.errors?.[0];
    const where = first?.loc?.at(-1);
    if (!(where && fieldError(f, String(where), first.msg))) fieldError(f, "submit", errorText(error));
  }
}

// A datetime-local value (the browser's local time, to the minute) for an instant.
function localInput(at) {
  if (!at) return "";
  const d = new Date(at);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function openEdit() {
  const f = $("#edit-form");
  clearErrors(f);
  f.name.value = batch.name;
  f.description.value = batch.description || "";
  f.tags.value = (batch.tags || []).join(", ");
  // a number priority (1-10) is offered as the name it is closest to
  const named = { 2: "low", 5: "medium", 8: "high", 10: "critical" };
  f.priority.value = typeof batch.priority === "number"
    ? named[[2, 5, 8, 10].reduce((a, b) => (Math.abs(b - batch.priority) < Math.abs(a - batch.priority) ? b : a))]
    : batch.priority;
  f.dataset.priority = f.priority.value;
  f.deadline.value = localInput(batch.deadline || batch.config?.deadline);
  f.dataset.deadline = f.deadline.value;
  // how many jobs run at once may change until it ends; a sequential batch runs one
  const concurrency = !TERMINAL.has(batch.status) && batch.config?.execution !== "sequential";
  $("#ed-concurrency").hidden = !concurrency;
  f.max_concurrent_jobs.value = batch.config?.max_concurrent_jobs ?? "";
  f.dataset.concurrency = f.max_concurrent_jobs.value;
  $("#edit-dialog").showModal();
  f.name.select();
}

// Only what the form changed is sent: an unchanged priority stays a number if it was one.
async function saveEdit(event) {
  event.preventDefault();
  const f = event.currentTarget;
  clearErrors(f);
  const name = f.name.value.trim();
  if (!name) {
    fieldError(f, "name", "Give the batch a name.");
    return;
  }
  const body = {
    name,
    description: f.description.value.trim(),
    tags: f.tags.value.split(",").map((t) => t.trim()).filter(Boolean),
  };
  if (f.priority.value !== f.dataset.priority) body.priority = f.priority.value;
  if (f.deadline.value !== f.dataset.deadline) {
    body.deadline = f.deadline.value ? new Date(f.deadline.value).toISOString() : null;
  }
  if (!$("#ed-concurrency").hidden && f.max_concurrent_jobs.value !== f.dataset.concurrency) {
    const jobs = Number(f.max_concurrent_jobs.value);
    if (!Number.isInteger(jobs) || jobs < 1 || jobs > 10000) {
      fieldError(f, "max_concurrent_jobs", "A whole number from 1 to 10,000.");
      return;
    }
    body.max_concurrent_jobs = jobs;
  }
  try {
    batch = { ...batch, ...(await api(`/v1/batches/${id}`, { method: "PATCH", body })) };
    renderBatch();
    $("#edit-dialog").close();
    toast("Saved.", "ok");
  } catch (error) {
    const first = error.problem?.errors?.[0];
    const where = first?.loc?.at(-1);
    if (!(where && fieldError(f, String(where), first.msg))) fieldError(f, "submit", errorText(error));
  }
}

let pollTimer = null;
function poll() {
  $("#live").textContent = "polling";
  clearInterval(pollTimer);
  pollTimer = setInterval(async () => {
    try {
      const before = batch.status;
      await loadBatch();
      if (before !== batch.status) {
        if (!TERMINAL.has(batch.status)) addTimeline(new Date().toISOString(), statusLabel(batch.status), null);
        refreshJobsSoon();
      }
    } catch (error) {
      if (!(error instanceof ApiError)) $("#live").textContent = "offline, retrying";
    }
  }, 1500);
}

function listen() {
  stream?.close();
  stream = follow(`/v1/batches/${id}/events`, onEvent, (state) => {
    const live = $("#live");
    live.classList.toggle("on", state === "live");
    if (state === "unavailable") poll();
    else live.textContent = state === "ended" ? "finished" : state;
    if (state === "live") loadBatch().catch(() => {});
    if (state === "ended") setTimeout(() => (TERMINAL.has(batch.status) ? watchFinished() : listen()), 2000);
  });
}

if (startPage()) {
  for (const button of $$("#actions [data-action]")) button.addEventListener("click", () => onAction(button));
  $("#rb-cancel").addEventListener("click", () => $("#rollback-dialog").close());
  $("#rb-confirm").addEventListener("click", confirmRollback);
  $("#report-close").addEventListener("click", () => $("#report-dialog").close());
  $("#template-form").addEventListener("submit", saveTemplate);
  $("#tpl-cancel").addEventListener("click", () => $("#template-dialog").close());
  $("#edit-form").addEventListener("submit", saveEdit);
  $("#ed-cancel").addEventListener("click", () => $("#edit-dialog").close());
  $("#report-csv").addEventListener("click", () =>
    download(`/v1/batches/${id}/report?format=csv`, `${id}-report.csv`).catch((e) => toast(unavailable(e), "error")),
  );
  $("#job-status").addEventListener("change", () => {
    jobCursors = [null];
    jobPage = 0;
    loadJobs();
  });
  $("#jobs-next").addEventListener("click", () => {
    jobPage += 1;
    loadJobs();
  });
  $("#jobs-prev").addEventListener("click", () => {
    jobPage = Math.max(0, jobPage - 1);
    loadJobs();
  });
  if (!mayOperate()) $("#actions").setAttribute("aria-label", "Batch reports");
  loadBatch()
    .then(() => {
      listen();
      loadJobs();
    })
    .catch((error) => {
      $("#b-name").textContent = error.status === 404 ? "No such batch" : "Could not load the batch";
      toast(errorText(error), "error");
    });
}
