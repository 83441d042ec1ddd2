// History: every batch with filters (sent to GET /v1/batches), cursor pages, and bulk retry
// and archive of the selected batches.

import { api, mayOperate } from "./api.js";
import { $, $$, TERMINAL, badge, errorText, fmtNumber, fmtTime, h, policyBadges, startPage, statusLabel, toast } from "./ui.js";

const PAGE = 25;
const form = $("#filters");
let cursors = [null];
let page = 0;
const selected = new Set();
const shown = new Map();

function updateSelection() {
  $("#selected-count") && ($("#selected-count").textContent = `${selected.size} selected`);
  const picked = [...selected].map((id) => shown.get(id)).filter(Boolean);
  const retry = $("#bulk-retry");
  const archive = $("#bulk-archive");
  if (retry) retry.disabled = !picked.some((b) => TERMINAL.has(b.status) && (b.progress.failed || b.progress.cancelled));
  if (archive) archive.disabled = !picked.some((b) => TERMINAL.has(b.status));
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
    h("td", { class: "num" }, `${(b.progress.percent ?? 0).toFixed(0)}%`),
    h("td", { class: `num ${b.progress.failed ? "bad" : ""}` }, fmtNumber(b.progress.failed)),
    h("td", {}, fmtTime(b.created_at)),
    h("td", {}, fmtTime(b.finished_at)),
  );
}

function query() {
  const q = new URLSearchParams({ limit: String(PAGE) });
  for (const [k, v] of new FormData(form)) {
    if (!v) continue;
    q.set(k, k === "created_after" ? new Date(`${v}T00:00:00`).toISOString() : String(v));
  }
  if (cursors[page]) q.set("cursor", cursors[page]);
  return q;
}

async function load() {
  let result;
  try {
    result = await api(`/v1/batches?${query()}`);
  } catch (error) {
    toast(errorText(error), "error");
    return;
  }
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

async function bulk(action) {
  const picked = [...selected].map((id) => shown.get(id)).filter(Boolean);
  const targets = picked.filter((b) =>
    action === "retry" ? TERMINAL.has(b.status) && (b.progress.failed || b.progress.cancelled) : TERMINAL.has(b.status),
  );
  let ok = 0;
  const failures = [];
  for (const b of targets) {
    try {
      await api(`/v1/batches/${b.id}/actions/${action}`, { method: "POST", body: {} });
      ok += 1;
    } catch (error) {
      failures.push(`${b.name}: ${errorText(error)}`);
    }
  }
  const skipped = picked.length - targets.length;
  toast(
    `${statusLabel(action)}: ${ok} accepted${skipped ? `, ${skipped} not applicable` : ""}${failures.length ? `, ${failures.length} refused` : ""}.`,
    failures.length ? "error" : "ok",
  );
  for (const f of failures.slice(0, 3)) toast(f, "error");
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
  $("#bulk-retry")?.addEventListener("click", () => bulk("retry"));
  $("#bulk-archive")?.addEventListener("click", () => bulk("archive"));
  loadJobTypes().then(() => {
    if (params.get("job_type")) form.job_type.value = params.get("job_type");
  });
  load();
}
