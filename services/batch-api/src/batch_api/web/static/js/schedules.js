// Schedules: the list with an enabled switch, next runs (in the schedule's zone and local
// time) and the last run's outcome; create and edit (cron, timezone, overlap, catch-up);
// trigger now; the run history with links to the batches each run made.

import { api, mayOperate, session } from "./api.js";
import { parseItems, showProblem } from "./forms.js";
import { $, ask, clearErrors, errorText, fieldError, fmtCount, fmtTime, h, isAdmin, startPage, toast } from "./ui.js";

const dialog = $("#schedule-dialog");
const form = $("#schedule-form");
let editing = null;
let templates = [];
let runsOf = null; // the schedule whose runs are shown

function mayChange(s) {
  const who = session() || {};
  return mayOperate() && (isAdmin() || who.user === s.owner);
}

export function inZone(iso, timeZone) {
  try {
    return new Intl.DateTimeFormat("en-GB", { timeZone, weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", timeZoneName: "short" }).format(new Date(iso));
  } catch {
    return iso;
  }
}

function outcomeBadge(outcome) {
  return h("span", { class: `badge o-${outcome}` }, outcome);
}

// A recurring schedule shows its cron; a one-run schedule the time it runs (or ran).
function when(s) {
  if (!s.run_at) return h("code", {}, s.cron);
  return h("span", { class: "once" }, "once, ", h("time", { datetime: s.run_at }, inZone(s.run_at, s.timezone)));
}

function nextRuns(s) {
  if (!s.enabled) return h("span", { class: "muted" }, "disabled");
  if (!s.next_runs.length) return h("span", { class: "muted" }, "none");
  const [first, ...rest] = s.next_runs;
  const local = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const line = (iso) => h("li", {}, h("time", { datetime: iso }, inZone(iso, s.timezone)), local !== s.timezone ? h("span", { class: "muted" }, ` · ${inZone(iso, local)} here`) : null);
  return h(
    "div",
    { class: "next-runs" },
    h("ul", { class: "plain" }, line(first)),
    rest.length ? h("details", {}, h("summary", {}, `${rest.length} more`), h("ul", { class: "plain" }, rest.map(line))) : null,
  );
}

function lastRun(s) {
  const run = s.last_run;
  if (!run) return h("span", { class: "muted" }, "never");
  return h(
    "div",
    {},
    outcomeBadge(run.outcome),
    " ",
    run.batch_id ? h("a", { href: `/batches/${run.batch_id}` }, "batch") : null,
    h("div", { class: "muted small" }, fmtTime(run.run_at)),
  );
}

// What a consolidation schedule's runs consolidate, planned anew at each run.
function consolidationText(c) {
  const scope = c.template_ids
    ? fmtCount(c.template_ids.length, "chosen template")
    : c.filter && (c.filter.category || (c.filter.tags && c.filter.tags.length) || c.filter.name_contains)
      ? `the templates ${[
        c.filter.category && `in ${c.filter.category}`,
        c.filter.tags && c.filter.tags.length && `tagged ${c.filter.tags.join(" or ")}`,
        c.filter.name_contains && `named like “${c.filter.name_contains}”`,
      ].filter(Boolean).join(", ")}`
      : "the whole template library";
  return `Consolidates (${c.operation}) ${scope}`;
}

function row(s) {
  const toggle = h("input", {
    type: "checkbox",
    role: "switch",
    "aria-label": `${s.name} enabled`,
    checked: s.enabled,
    disabled: !mayChange(s),
    onchange: (e) => setEnabled(s, e.target.checked, e.target),
  });
  const actions = [h("button", { type: "button", onclick: () => showRuns(s) }, "Runs")];
  if (mayOperate()) actions.unshift(h("button", { type: "button", onclick: () => trigger(s) }, "Trigger now"));
  if (mayChange(s)) {
    actions.push(h("button", { type: "button", onclick: () => openEditor(s) }, "Edit"));
    actions.push(h("button", { type: "button", class: "danger", onclick: () => remove(s) }, "Delete"));
  }
  return h(
    "tr",
    { id: `schedule-${s.id}`, dataset: { enabled: String(s.enabled) } },
    h("td", {}, h("strong", {}, s.name), s.description ? h("div", { class: "muted small" }, s.description) : null,
      s.consolidation ? h("div", { class: "muted small" }, consolidationText(s.consolidation)) : null),
    h("td", {}, when(s), h("div", { class: "muted small" }, s.timezone)),
    h("td", {}, h("label", { class: "switch" }, toggle, h("span", { "aria-hidden": "true" }, s.enabled ? "on" : "off"))),
    h("td", {}, nextRuns(s)),
    h("td", { class: "last-run" }, lastRun(s)),
    h("td", {}, h("div", { class: "row-actions" }, actions)),
  );
}

async function load() {
  let page;
  try {
    page = await api("/v1/schedules?limit=200");
  } catch (error) {
    toast(errorText(error), "error");
    return;
  }
  $("#s-rows").replaceChildren(...page.items.map(row));
  $("#s-empty").hidden = page.items.length > 0;
  $("#s-rows").setAttribute("aria-busy", "false");
  if (runsOf) {
    const again = page.items.find((s) => s.id === runsOf.id);
    if (again) await showRuns(again, false);
  }
}

async function setEnabled(s, enabled, input) {
  input.disabled = true;
  try {
    await api(`/v1/schedules/${s.id}/${enabled ? "enable" : "disable"}`, { method: "POST" });
    toast(`${s.name} ${enabled ? "enabled" : "disabled"}.`, "ok");
  } catch (error) {
    input.checked = !enabled;
    toast(errorText(error), "error");
  }
  await load();
}

async function trigger(s) {
  try {
    const run = await api(`/v1/schedules/${s.id}/trigger`, { method: "POST" });
    if (run.outcome === "created") toast(`${s.name}: started batch ${run.batch_id}.`, "ok");
    else toast(`${s.name}: run ${run.outcome}${run.detail ? `: ${run.detail}` : ""}.`, run.outcome === "failed" ? "error" : "info");
  } catch (error) {
    toast(errorText(error), "error");
  }
  runsOf = s;
  await load();
}

async function showRuns(s, focus = true) {
  runsOf = s;
  let runs;
  try {
    runs = (await api(`/v1/schedules/${s.id}/runs`)).items;
  } catch (error) {
    toast(errorText(error), "error");
    return;
  }
  $("#runs-title").textContent = `Runs of ${s.name}`;
  $("#runs").replaceChildren(
    ...runs.map((r) =>
      h(
        "tr",
        { dataset: { outcome: r.outcome } },
        h("td", {}, h("time", { datetime: r.run_at }, fmtTime(r.run_at))),
        h("td", {}, r.trigger, r.missed ? " (missed)" : ""),
        h("td", {}, outcomeBadge(r.outcome)),
        h("td", {}, r.batch_id ? h("a", { href: `/batches/${r.batch_id}` }, r.batch_id) : "–"),
        h("td", {}, r.detail || ""),
      ),
    ),
  );
  $("#runs-empty").hidden = runs.length > 0;
  $("#runs-section").hidden = false;
  if (focus) $("#runs-title").scrollIntoView({ block: "nearest" });
}

// ---- create and edit -------------------------------------------------------------------

function openEditor(s = null) {
  editing = s;
  clearErrors(form);
  form.reset();
  $("#sd-title").textContent = s ? `Edit ${s.name}` : "New schedule";
  const select = form.template_id;
  select.disabled = !!s;
  // a consolidation's runs plan their own items: neither a template nor items to give
  const consolidation = !!(s && s.consolidation);
  select.closest(".field").hidden = consolidation;
  form.items.closest(".field").hidden = consolidation;
  $("#sf-consolidation").hidden = !consolidation;
  if (consolidation) {
    const c = s.consolidation;
    $("#sf-c-scope").textContent = `${consolidationText(c)}, planned afresh at each run.`;
    form.c_operation.value = c.operation;
    form.c_conflicts.value = c.conflict_resolution;
    form.c_backup.value = c.backup_strategy;
  }
  if (s) {
    form.name.value = s.name;
    form.cron.value = s.cron;
    form.timezone.value = s.timezone;
    form.overlap.value = s.overlap;
    form.catch_up.value = s.catch_up;
    form.enabled.checked = s.enabled;
    select.value = s.template_id || "";
    const items = s.template_id ? s.overrides && s.overrides.items : s.spec && s.spec.items;
    form.items.value = items ? items.map((i) => JSON.stringify(i)).join("\n") : "";
  } else {
    form.timezone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  }
  dialog.showModal();
  form.name.focus();
}

async function save(event) {
  event.preventDefault();
  clearErrors(form);
  const { items, error } = parseItems(form.items.value);
  if (error) {
    fieldError(form, "items", error);
    return;
  }
  const body = {
    name: form.name.value.trim(),
    cron: form.cron.value.trim(),
    timezone: form.timezone.value.trim() || "UTC",
    overlap: form.overlap.value,
    catch_up: form.catch_up.value,
    enabled: form.enabled.checked,
  };
  let ok = true;
  if (!body.name) ok = fieldError(form, "name", "Give the schedule a name.") && false;
  if (!body.cron) ok = fieldError(form, "cron", "Say when it runs, e.g. 0 3 * * 1-5.") && false;
  // a one-run schedule's cron names its time: sent again unchanged, it would make it recurring
  if (editing && editing.run_at && body.cron === editing.cron) delete body.cron;
  const template = templates.find((t) => t.id === (editing ? editing.template_id : form.template_id.value));
  if (!editing && !form.template_id.value) ok = fieldError(form, "template_id", "Choose the template each run starts.") && false;
  if (!editing && template && !template.spec.items && !items.length) {
    ok = fieldError(form, "items", "This template has no items: give the items each run processes.") && false;
  }
  if (!ok) {
    $("[aria-invalid='true']", form)?.focus();
    return;
  }
  if (editing && editing.consolidation) {
    // the rest of it (which templates, how many a job) stays as it was made
    body.consolidation = {
      ...editing.consolidation,
      operation: form.c_operation.value,
      conflict_resolution: form.c_conflicts.value,
      backup_strategy: form.c_backup.value,
    };
  } else if (editing && !editing.template_id) {
    if (items.length) body.spec = { ...editing.spec, items };
  } else if (items.length || editing) {
    body.overrides = { ...((editing && editing.overrides) || {}), items: items.length ? items : null };
  }
  if (!editing) body.template_id = form.template_id.value;
  const button = $("#sd-save");
  button.disabled = true;
  try {
    const saved = editing
      ? await api(`/v1/schedules/${editing.id}`, { method: "PATCH", body })
      : await api("/v1/schedules", { method: "POST", body });
    dialog.close();
    toast(`Saved ${saved.name}${saved.next_runs.length ? `; next run ${inZone(saved.next_runs[0], saved.timezone)}` : ""}.`, "ok");
    await load();
  } catch (err) {
    showProblem(form, err, { "overrides.items": "items", overrides: "items", "spec.items": "items", spec: "items", consolidation: "consolidation" });
  } finally {
    button.disabled = false;
  }
}

async function remove(s) {
  $("#cd-text").textContent = `“${s.name}” will make no more batches. The batches it made stay.`;
  if ((await ask($("#confirm-dialog"))) !== "yes") return;
  try {
    await api(`/v1/schedules/${s.id}`, { method: "DELETE" });
    toast(`Deleted schedule ${s.name}.`, "ok");
    if (runsOf && runsOf.id === s.id) {
      runsOf = null;
      $("#runs-section").hidden = true;
    }
    await load();
  } catch (error) {
    toast(errorText(error), "error");
  }
}

async function loadTemplates() {
  try {
    templates = (await api("/v1/templates?limit=500")).items;
  } catch {
    templates = [];
  }
  form.template_id.append(
    ...templates.map((t) => h("option", { value: t.id }, `${t.name} (${t.category}, ${t.spec.items ? `${t.spec.items.length} items` : "no items"})`)),
  );
}

if (startPage()) {
  let zones = [];
  try {
    zones = Intl.supportedValuesOf("timeZone");
  } catch {
    zones = ["UTC"];
  }
  $("#zones").replaceChildren(...zones.map((z) => h("option", { value: z })));
  $("#new-schedule")?.addEventListener("click", () => openEditor());
  $("#sd-cancel").addEventListener("click", () => dialog.close());
  form.addEventListener("submit", save);
  loadTemplates();
  load();
}
