// The wizard's consolidation mode (job type templates.consolidate): pick library templates,
// choose merge/replace/archive, backups and conflict handling; the review shows the plan
// (POST /v1/library/consolidations/plan) and starting posts /v1/library/consolidations.

import { api, idempotencyKey } from "./api.js";
import { $, fmtCount, fmtNumber, h, readOrder } from "./ui.js";

export const CONSOLIDATE = "templates.consolidate";
const selected = new Set();
let shown = [];
let searchTimer = null;

// A document written outside the API (no body, ...): shown, but a consolidation refuses it.
const whole = (t) => !(t.defects && t.defects.length);

function renderCount() {
  const selectable = shown.filter(whole);
  $("#lib-count").textContent = `${fmtCount(selected.size, "template")} selected`;
  $("#lib-all").checked = selectable.length > 0 && selectable.every((t) => selected.has(t.id));
}

function row(t) {
  const box = h("input", {
    type: "checkbox",
    "aria-label": `Consolidate ${t.name || t.id} (${t.id})`,
    checked: selected.has(t.id),
    disabled: !whole(t),
    onchange: (ev) => {
      if (ev.currentTarget.checked) selected.add(t.id);
      else selected.delete(t.id);
      renderCount();
    },
  });
  const text = whole(t)
    ? h("td", { class: "muted" }, t.body.length > 80 ? `${t.body.slice(0, 80)}…` : t.body)
    : h("td", { class: "warn", title: "Written outside the API: mend it (PATCH /v1/library/templates/" + t.id + ") or delete it to consolidate it" },
      `Not a whole template: ${t.defects.join(", ")}`);
  const name = t.name || h("span", { class: "muted" }, t.id);
  return h("tr", {}, h("td", {}, box), h("td", {}, name), h("td", {}, t.category), text);
}

const nextRead = readOrder();

async function search(form) {
  const current = nextRead();
  const q = new URLSearchParams({ status: "active", limit: "200" });
  if (form.lib_q.value.trim()) q.set("q", form.lib_q.value.trim());
  if (form.lib_category.value.trim()) q.set("category", form.lib_category.value.trim());
  const page = await api(`/v1/library/templates?${q}`);
  if (!current()) return; // a later search (the person typed on) is under way
  shown = page.items;
  $("#lib-rows").replaceChildren(
    ...(shown.length ? shown.map(row) : [h("tr", {}, h("td", { colspan: 4, class: "muted" }, "No active template matches."))]),
  );
  renderCount();
}

export function wireConsolidation(form, onError) {
  const again = () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => search(form).catch(onError), 250);
  };
  form.lib_q.addEventListener("input", again);
  form.lib_category.addEventListener("input", again);
  $("#lib-all").addEventListener("change", (ev) => {
    for (const t of shown.filter(whole)) {
      if (ev.currentTarget.checked) selected.add(t.id);
      else selected.delete(t.id);
    }
    $("#lib-rows").replaceChildren(...shown.map(row));
    renderCount();
  });
}

// Shows the consolidation fields instead of the generic ones (or back).
export function showConsolidation(form, on) {
  $("#consolidation").hidden = !on;
  $("#items-fieldset").hidden = on;
  $("#consolidation-safety").hidden = !on;
  $("#generic-limits").hidden = on;
  if (on && !shown.length) search(form).catch(() => {});
}

export function selectedCount() {
  return selected.size;
}

export function consolidationBody(form) {
  return {
    name: form.name.value.trim(),
    description: form.description.value.trim(),
    priority: form.priority.value,
    tags: form.tags.value.split(",").map((t) => t.trim()).filter(Boolean),
    operation: form.operation.value,
    template_ids: [...selected],
    backup_strategy: form.backup_strategy.value,
    conflict_resolution: form.conflict_resolution.value,
    similarity_threshold: Number(form.similarity_threshold.value),
    stop_on_error: form.elements["config.stop_on_error"].checked,
    rollback_on_failure: form.elements["config.rollback_on_failure"].checked,
  };
}

export async function planRows(form) {
  const body = consolidationBody(form);
  const plan = await api("/v1/library/consolidations/plan", { method: "POST", body });
  return [
    ["Name", body.name],
    ["Job type", CONSOLIDATE],
    ["Operation", body.operation],
    ["Templates", fmtNumber(plan.templates)],
    ["Duplicates found", fmtNumber(plan.duplicates)],
    ["Name conflicts", fmtNumber(plan.conflicts)],
    ["Jobs", fmtNumber(plan.jobs)],
    ["Backups", body.backup_strategy],
    ["Conflicts", body.conflict_resolution],
    ["On failure", [body.stop_on_error && "stop at the first failed job", body.rollback_on_failure && "roll back"].filter(Boolean).join(", ") || "keep going"],
  ];
}

// "Once, later" or "On a schedule": a schedule whose runs each plan this consolidation anew
// (POST /v1/schedules with `consolidation`), over the templates chosen here.
export async function scheduleConsolidation(form, when) {
  const body = consolidationBody(form);
  const timezone = when === "later"
    ? Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"
    : form.timezone.value.trim() || "UTC";
  const schedule = { name: body.name, description: body.description, timezone, consolidation: body };
  if (when === "later") {
    const at = form.start_at.value ? new Date(form.start_at.value) : null; // local time
    if (!at || at <= new Date()) return { field: "start_at", message: "Choose when it starts: a time in the future." };
    schedule.run_at = at.toISOString();
  } else {
    schedule.cron = form.cron.value.trim();
    schedule.overlap = form.overlap.value;
  }
  const created = await api("/v1/schedules", { method: "POST", body: schedule });
  location.assign(`/schedules?created=${encodeURIComponent(created.id)}`);
  return null;
}

export async function startConsolidation(form) {
  const body = consolidationBody(form);
  const key = idempotencyKey("consolidation", body); // pressed again after a failure: the same batch
  const created = await api("/v1/library/consolidations", { method: "POST", body, key });
  location.assign(`/batches/${created.batch_id}`);
}
