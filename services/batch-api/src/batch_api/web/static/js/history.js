// History: every batch with filters (sent to GET /v1/batches), cursor pages, and bulk pause,
// resume, retry, cancel, archive and delete of the selected batches (POST /v1/batches/bulk) with the result
// for each batch shown.

import { api, mayOperate } from "./api.js";
import { $, $$, TERMINAL, ask, badge, errorText, failuresOf, fmtNumber, fmtPercent, fmtTime, h, policyBadges, readOrder, startPage, statusLabel, toast } from "./ui.js";

const PAGE = 25;
const form = $("#filters");
let cursors = [null];
let page = 0;
const nextRead = readOrder();
const selected = new Set();
const shown = new Map();

// Which selected batches an action can apply to (the server decides; this only keeps buttons
// that could do nothing disabled).
const APPLIES = {
  pause: (b) => ["queued", "running", "retrying"].includes(b.status),
  resume: (b) => b.status === "paused",
  retry: (b) => TERMINAL.has(b.status) && (b.progress.failed || b.progress.cancelled),
  cancel: (b) => !TERMINAL.has(b.status) && b.status !== "archived",
  archive: (b) => TERMINAL.has(b.status),
  delete: (b) => TERMINAL.has(b.status) || b.status === "archived",
};

function updateSelection() {
  $("#selected-count") && ($("#selected-count").textContent = `${selected.size} selected`);
  const picked = [...selected].map((id) => shown.get(id)).filter(Boolean);
  for (const button of $$("[data-bulk]")) {
    button.disabled = !picked.some(APPLIES[button.dataset.bulk]);
  }
}

function row(b) {
  const check = mayOperate()
    ? h("td", {}, h("input", {
        type: "checkbox",
        "aria-label": `Select ${b.name}`,
        checked: selected.has(b.id),
        onchange: (e) => {
          if (e.target.checked) selected.add(b.id);
          else selected.delete(b.id);
          updateSelection();
        },
      }))
    : null;
  return h(
    "tr",
    { id: `row-${b.id}`, dataset: { status: b.status } },
    check,
    h("td", {}, h("a", { href: `/batches/${b.id}` }, b.name)),
    h("td", {}, badge(b.status), ...policyBadges(b).map((x) => [" ", x])),
    h("td", {}, b.job_type),
    h("td", { class: "num" }, fmtPercent(b.progress.percent ?? 0)),
    failedCell(b.progress),
    h("td", {}, fmtTime(b.created_at)),
    h("td", {}, fmtTime(b.finished_at)),
  );
}

// Jobs parked for a person's decision are formally failed but no error of the batch: said
// apart, as on the overview ("0 · 1 awaiting").
function failedCell(progress) {
  const { errors, awaiting } = failuresOf(progress);
  return h(
    "td",
    { class: `num ${errors ? "bad" : ""}` },
    fmtNumber(errors),
    awaiting ? h("span", { class: "warn", title: "jobs awaiting a person's decision" }, ` · ${fmtNumber(awaiting)} awaiting`) : null,
  );
}

function query() {
  const q = new URLSearchParams({ limit: String(PAGE) });
  for (const [k, v] of new FormData(form)) {
    if (!v) continue;
    // a date means its local midnight: "from" that day on, "before" that day began
    const day = k === "created_after" || k === "created_before";
    q.set(k, day ? new Date(`${v}T00:00:00`).toISOString() : String(v));
  }
  if (cursors[page]) q.set("cursor", cursors[page]);
  return q;
}

async function load() {
  const current = nextRead();
  let result;
  try {
    result = await api(`/v1/batches?${query()}`);
  } catch (error) {
    if (current()) toast(errorText(error), "error");
    return;
  }
  if (!current()) return;
  shown.clear();
  for (const b of result.items) shown.set(b.id, b);
  $("#rows").replaceChildren(...result.items.map(row));
  $("#empty").hidden = result.items.length > 0;
  cursors[page + 1] = result.next_cursor;
  $("#prev").disabled = page === 0;
  $("#next").disabled = !result.next_cursor;
  $("#page").textContent = `page ${page + 1}`;
  const all = $("#select-all");
  if (all) all.checked = result.items.length > 0 && result.items.every((b) => selected.has(b.id));
  updateSelection();
}

const CONFIRM = {
  cancel: (n) => `Cancel ${n} batch(es)? Pending jobs are cancelled and running ones asked to stop.`,
  delete: (n) => `Delete ${n} batch(es) and everything recorded about them? This cannot be undone.`,
};

function showResults(outcome) {
  const label = (id) => (shown.get(id) || names.get(id) || { name: id }).name;
  $("#br-title").textContent = `${statusLabel(outcome.action)}: results`;
  $("#br-summary").textContent = `${outcome.succeeded} of ${outcome.matched} accepted${outcome.failed ? `, ${outcome.failed} refused` : ""}.`;
  $("#br-rows").replaceChildren(
    ...outcome.results.map((r) =>
      h(
        "tr",
        { class: r.ok ? "" : "refused", dataset: { id: r.id, ok: String(r.ok) } },
        h(
          "td",
          {},
          label(r.id),
          " ",
          r.status === 404 || outcome.action === "delete"
            ? h("code", { class: "muted small" }, r.id)
            : h("a", { href: `/batches/${r.id}`, class: "small" }, r.id),
        ),
        h("td", {}, h("span", { class: `badge ${r.ok ? "s-completed" : "s-failed"}` }, r.ok ? "done" : "refused")),
        h("td", {}, r.batch_status ? badge(r.batch_status) : "–"),
        h("td", {}, r.detail || (r.ok ? "" : `HTTP ${r.status}`)),
      ),
    ),
  );
  $("#bulk-results").hidden = false;
}

const names = new Map(); // names of batches acted on, kept after they leave the page

async function bulk(action) {
  const picked = [...selected].map((id) => shown.get(id)).filter(Boolean);
  if (!picked.length) return;
  if (CONFIRM[action]) {
    $("#bc-text").textContent = CONFIRM[action](picked.length);
    $("#bc-yes").textContent = statusLabel(action).replace(/^./, (c) => c.toUpperCase());
    if ((await ask($("#bulk-confirm"))) !== "yes") return;
  }
  for (const b of picked) names.set(b.id, b);
  let outcome;
  try {
    outcome = await api("/v1/batches/bulk", { method: "POST", body: { action, ids: picked.map((b) => b.id) } });
  } catch (error) {
    toast(errorText(error), "error");
    return;
  }
  toast(
    `${statusLabel(action)}: ${outcome.succeeded} accepted${outcome.failed ? `, ${outcome.failed} refused` : ""}.`,
    outcome.failed ? "error" : "ok",
  );
  showResults(outcome);
  selected.clear();
  await load();
}

async function loadJobTypes() {
  try {
    const types = await api("/v1/job-types");
    form.job_type.append(...types.map((t) => h("option", { value: t.name }, t.name)));
  } catch {
    /* the filter keeps "any" only */
  }
}

if (startPage()) {
  const params = new URLSearchParams(location.search);
  for (const [k, v] of params) if (form.elements[k]) form.elements[k].value = v;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    cursors = [null];
    page = 0;
    selected.clear();
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) q.set(k, String(v));
    history.replaceState(null, "", `/history${q.size ? `?${q}` : ""}`);
    load();
  });
  $("#next").addEventListener("click", () => {
    if (!cursors[page + 1]) return; // the next page's cursor comes with this page's answer
    page += 1;
    load();
  });
  $("#prev").addEventListener("click", () => {
    page = Math.max(0, page - 1);
    load();
  });
  $("#select-all")?.addEventListener("change", (e) => {
    for (const id of shown.keys()) {
      if (e.target.checked) selected.add(id);
      else selected.delete(id);
    }
    for (const box of $$("#rows input[type=checkbox]")) box.checked = e.target.checked;
    updateSelection();
  });
  for (const button of $$("[data-bulk]")) button.addEventListener("click", () => bulk(button.dataset.bulk));
  $("#br-close")?.addEventListener("click", () => ($("#bulk-results").hidden = true));
  loadJobTypes().then(() => {
    if (params.get("job_type")) form.job_type.value = params.get("job_type");
  });
  load();
}
