// New batch wizard: basics → job type and items → safety → review and start. Each step is
// checked before the next; the server's 422 answers are shown next to the field they name.

import { api, idempotencyKey } from "./api.js";
import {
  CONSOLIDATE, planRows, scheduleConsolidation, selectedCount, showConsolidation, startConsolidation,
  wireConsolidation,
} from "./consolidation.js";
import { renderSchemaForm } from "./schemaform.js";
import { $, $$, clearErrors, errorText, fieldError, fmtCount, fmtTime, h, startPage, toast, UNSUBMITTED } from "./ui.js";

const MAX_INLINE = 10_000;
const UPLOAD_CHUNK = 5_000;
// Input properties about safety (e.g. of a consolidation job type) are asked in step 3.
const SAFETY_PROPS = ["backup_strategy", "backup", "conflict_resolution"];

const form = $("#wizard");
let step = 1;
let jobTypes = [];
let items = [];
let readItem = () => ({ item: {}, errors: [] });
let readSafety = () => ({ item: {}, errors: [] });

function showStep(n) {
  step = n;
  for (const section of $$(".step", form)) section.hidden = Number(section.dataset.step) !== n;
  for (const li of $$("#steps li")) {
    const s = Number(li.dataset.step);
    li.classList.toggle("done", s < n);
    if (s === n) li.setAttribute("aria-current", "step");
    else li.removeAttribute("aria-current");
  }
  $("#back").disabled = n === 1;
  $("#next").hidden = n === 4;
  $("#start").hidden = n !== 4;
  const save = $("#save-template");
  if (save) save.hidden = n !== 4 || consolidating();
  if (n === 4) renderReview();
  const fields = $$(`.step[data-step="${n}"] input, .step[data-step="${n}"] select, .step[data-step="${n}"] textarea`, form);
  const first = fields.find((el) => !el.closest("[hidden]"));
  if (first && n !== 4) first.focus();
  else $("#start").focus();
}

function stepOf(fieldName) {
  const el = form.querySelector(`[data-error-for="${CSS.escape(fieldName)}"]`);
  const section = el && el.closest(".step");
  return section ? Number(section.dataset.step) : 4;
}

function checkNative(n) {
  let ok = true;
  for (const input of $$(`.step[data-step="${n}"] [name]`, form)) {
    if (input.type === "file" || input.name === "lines" || input.name.startsWith("item.")) continue;
    if (!input.checkValidity()) {
      fieldError(form, input.name, input.validationMessage);
      ok = false;
    }
  }
  return ok;
}

function validate(n) {
  clearErrors(form);
  let ok = checkNative(n);
  if (n === 1 && !form.name.value.trim()) {
    ok = fieldError(form, "name", "Give the batch a name.") && false;
  }
  if (n === 1 && form.deadline.value && new Date(form.deadline.value) <= new Date()) {
    ok = fieldError(form, "deadline", "Choose a time in the future, or leave it empty.") && false;
  }
  if (n === 2) {
    if (!form.job_type.value) ok = fieldError(form, "job_type", "Choose a job type.") && false;
    if (consolidating()) {
      if (!selectedCount()) ok = fieldError(form, "template_ids", "Tick at least one template.") && false;
    } else if (!items.length) ok = fieldError(form, "items", "Add at least one item.") && false;
  }
  if (n === 3) {
    const { errors } = readSafety();
    for (const e of errors) ok = fieldError(form, e.name, e.message) && false;
  }
  if (!ok) $("[aria-invalid='true']", form)?.focus();
  return ok;
}

function renderItems() {
  $("#item-count").textContent = fmtCount(items.length, "item");
  const preview = $("#item-preview");
  preview.hidden = !items.length;
  const head = items.slice(0, 5).map((i) => JSON.stringify(i));
  if (items.length > 5) head.push(`… and ${(items.length - 5).toLocaleString("en")} more`);
  preview.textContent = head.join("\n");
}

// Parses JSON lines (or a JSON array); returns {parsed, error}.
function parseLines(text) {
  const trimmed = text.trim();
  if (!trimmed) return { parsed: [], error: "Nothing to add." };
  if (trimmed.startsWith("[")) {
    try {
      const array = JSON.parse(trimmed);
      if (array.every((x) => x && typeof x === "object" && !Array.isArray(x))) return { parsed: array };
      return { parsed: [], error: "The array must hold JSON objects." };
    } catch (e) {
      return { parsed: [], error: `Not valid JSON: ${e.message}` };
    }
  }
  const parsed = [];
  const lines = trimmed.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    try {
      const value = JSON.parse(line);
      if (!value || typeof value !== "object" || Array.isArray(value)) throw new Error("not an object");
      parsed.push(value);
    } catch (e) {
      return { parsed: [], error: `Line ${i + 1} is not a JSON object (${e.message}).` };
    }
  }
  return { parsed };
}

function consolidating() {
  return form.job_type.value === CONSOLIDATE;
}

function chooseJobType() {
  showConsolidation(form, consolidating());
  const type = jobTypes.find((t) => t.name === form.job_type.value);
  $("#job-type-desc").textContent = type ? type.description : "";
  // a job type without backup and compensation cannot be rolled back: the API would refuse
  const rollback = form.elements["config.rollback_on_failure"];
  const cannot = Boolean(type) && !type.supports_rollback;
  rollback.disabled = cannot;
  if (cannot) rollback.checked = false;
  $("#rollback-note").hidden = !cannot;
  $("#rollback-note").textContent = cannot ? `${type.name} cannot be rolled back: it keeps no backups.` : "";
  const schema = type ? type.input_schema : { properties: {} };
  const names = Object.keys(schema.properties || {});
  readItem = renderSchemaForm($("#schema-form"), schema, { names: names.filter((n) => !SAFETY_PROPS.includes(n)) });
  readSafety = renderSchemaForm($("#safety-schema"), schema, {
    prefix: "safety.",
    names: names.filter((n) => SAFETY_PROPS.includes(n)),
  });
  if (items.length) {
    items = [];
    renderItems();
    toast("The job type changed: the items were cleared.");
  }
}

function selectTab(tab) {
  for (const t of $$("[role=tab]", form)) {
    const on = t === tab;
    t.setAttribute("aria-selected", String(on));
    t.tabIndex = on ? 0 : -1;
    $(`#${t.getAttribute("aria-controls")}`).hidden = !on;
  }
  tab.focus();
}

function wireItems() {
  const tabs = $$("[role=tab]", form);
  for (const tab of tabs) {
    tab.addEventListener("click", () => selectTab(tab));
    tab.addEventListener("keydown", (event) => {
      const i = tabs.indexOf(tab);
      if (event.key === "ArrowRight") selectTab(tabs[(i + 1) % tabs.length]);
      if (event.key === "ArrowLeft") selectTab(tabs[(i + tabs.length - 1) % tabs.length]);
    });
  }
  $("#add-form").addEventListener("click", () => {
    clearErrors(form);
    const { item, errors } = readItem();
    for (const e of errors) fieldError(form, e.name, e.message);
    const copies = Number(form.copies.value);
    if (!Number.isInteger(copies) || copies < 1 || copies > 100_000) {
      fieldError(form, "copies", "Enter a whole number from 1 to 100,000.");
      return;
    }
    if (errors.length) return;
    for (let i = 0; i < copies; i++) items.push({ ...item });
    renderItems();
  });
  $("#add-lines").addEventListener("click", () => {
    clearErrors(form);
    const { parsed, error } = parseLines(form.lines.value);
    if (error) {
      fieldError(form, "lines", error);
      return;
    }
    items.push(...parsed);
    form.lines.value = "";
    renderItems();
  });
  form.file.addEventListener("change", async () => {
    clearErrors(form);
    const file = form.file.files[0];
    if (!file) return;
    const { parsed, error } = parseLines(await file.text());
    if (error) fieldError(form, "file", `${file.name}: ${error}`);
    else {
      items.push(...parsed);
      renderItems();
      toast(`${parsed.length.toLocaleString("en")} items read from ${file.name}.`, "ok");
    }
    form.file.value = "";
  });
  $("#clear-items").addEventListener("click", () => {
    items = [];
    renderItems();
  });
}

function num(name) {
  return Number(form.elements[name].value);
}

function sequential() {
  return form.elements["config.execution"].value === "sequential";
}

function onExecution() {
  // one at a time: the concurrency says nothing then
  form.elements["config.max_concurrent_jobs"].disabled = sequential();
}

function requestBody() {
  const { item: safety } = readSafety();
  return {
    name: form.name.value.trim(),
    description: form.description.value.trim(),
    priority: form.priority.value,
    tags: form.tags.value.split(",").map((t) => t.trim()).filter(Boolean),
    // datetime-local is the browser's local time; the API takes an instant
    deadline: form.deadline.value ? new Date(form.deadline.value).toISOString() : null,
    job_type: form.job_type.value,
    config: {
      on_deadline_missed: form.elements["config.on_deadline_missed"].value,
      execution: form.elements["config.execution"].value,
      max_concurrent_jobs: sequential() ? 1 : num("config.max_concurrent_jobs"),
      timeout_s: num("config.timeout_s"),
      failure_threshold: num("config.failure_threshold"),
      stop_on_error: form.elements["config.stop_on_error"].checked,
      rollback_on_failure: form.elements["config.rollback_on_failure"].checked,
      retry: {
        max_attempts: num("config.retry.max_attempts"),
        backoff_initial_s: num("config.retry.backoff_initial_s"),
        backoff_max_s: num("config.retry.backoff_max_s"),
      },
    },
    items: Object.keys(safety).length ? items.map((i) => ({ ...safety, ...i })) : items,
  };
}

function renderReview() {
  if (consolidating()) {
    $("#review").replaceChildren(h("dt", {}, "Plan"), h("dd", {}, "Planning…"));
    planRows(form)
      .then((rows) => $("#review").replaceChildren(...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])))
      .catch((error) => {
        $("#review").replaceChildren();
        showServerErrors(error);
      });
    return;
  }
  const b = requestBody();
  const c = b.config;
  const rows = [
    ["Name", b.name],
    ["Description", b.description || "–"],
    ["Priority", b.priority],
    ["Tags", b.tags.join(", ") || "–"],
    ["Deadline", b.deadline ? `${fmtTime(b.deadline)}; if missed: ${$("#f-missed").selectedOptions[0].text.toLowerCase()}` : "–"],
    ["Job type", b.job_type],
    ["Items", b.items.length.toLocaleString("en")],
    ["Retries", `${c.retry.max_attempts} attempts, backoff ${c.retry.backoff_initial_s}s up to ${c.retry.backoff_max_s}s`],
    ["Limits", `${c.execution === "sequential" ? "one at a time, in item order" : `${c.max_concurrent_jobs} at a time`}, ${c.timeout_s}s per job, failure threshold ${c.failure_threshold}`],
    ["On errors", [c.stop_on_error && "stop at first failure", c.rollback_on_failure && "roll back on failure"].filter(Boolean).join(", ") || "keep going"],
  ];
  const { item: safety } = readSafety();
  for (const [k, v] of Object.entries(safety)) rows.push([k.replaceAll("_", " "), String(v)]);
  $("#review").replaceChildren(...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function showServerErrors(error) {
  const p = error.problem || {};
  let placed = false;
  let firstStep = 4;
  for (const e of p.errors || []) {
    let name;
    let message = e.msg;
    if (Array.isArray(e.loc)) {
      const loc = e.loc[0] === "body" ? e.loc.slice(1) : e.loc;
      name = loc[0] === "items" ? "items" : loc.join(".");
      if (loc[0] === "items" && loc.length > 1) message = `item ${loc[1]}: ${e.msg}`;
    } else if (e.item !== undefined) {
      name = "items";
      message = `item ${e.item}${e.path ? ` (${e.path})` : ""}: ${e.msg}`;
    }
    if (name && fieldError(form, name, message)) {
      placed = true;
      firstStep = Math.min(firstStep, stepOf(name));
    }
  }
  if (!placed && /job type/i.test(p.title || "")) {
    placed = fieldError(form, "job_type", p.detail);
    firstStep = 2;
  }
  if (!placed) fieldError(form, "submit", errorText(error));
  if (firstStep !== 4) {
    const keep = $$("[data-error-for]", form).map((el) => [el, el.textContent]);
    showStep(firstStep);
    for (const [el, text] of keep) el.textContent = text;
  }
}

// The review step's "When": start now; once, later (a one-run schedule: POST /v1/schedules
// with `run_at`); or a schedule that makes this batch on a cron expression, its next runs
// shown as one types. Both schedules carry the batch as their spec.
function scheduled() {
  return form.elements.when?.value === "schedule";
}

function later() {
  return form.elements.when?.value === "later";
}

function onWhen() {
  $("#schedule-fields").hidden = !scheduled();
  $("#later-fields").hidden = !later();
  $("#start").textContent = scheduled() ? "Create schedule" : later() ? "Schedule it" : "Start now";
  if (scheduled()) previewSoon();
}

let previewTimer = null;
function previewSoon() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(preview, 300);
}

function inZoneText(iso, timeZone) {
  try {
    return new Intl.DateTimeFormat("en-GB", {
      timeZone, weekday: "short", year: "numeric", month: "short", day: "numeric",
      hour: "2-digit", minute: "2-digit", timeZoneName: "short",
    }).format(new Date(iso));
  } catch {
    return iso;
  }
}

async function preview() {
  const list = $("#next-runs");
  for (const name of ["cron", "timezone"]) {
    $(`[data-error-for="${name}"]`, form).textContent = "";
    form.elements[name].removeAttribute("aria-invalid");
  }
  const cron = form.cron.value.trim();
  const timeZone = form.timezone.value.trim() || "UTC";
  try {
    const q = new URLSearchParams({ cron, timezone: timeZone });
    const found = await api(`/v1/schedules/preview?${q}`);
    list.replaceChildren(...found.next_runs.map((at) => h("li", {}, h("time", { datetime: at }, inZoneText(at, timeZone)))));
  } catch (error) {
    list.replaceChildren();
    const where = (error.problem?.errors?.[0]?.loc || []).includes("timezone") ? "timezone" : "cron";
    fieldError(form, where, error.problem?.detail || errorText(error));
  }
}

async function createLater(body) {
  const { name, description, job_type, priority, tags, config, items: all } = body;
  const at = form.start_at.value ? new Date(form.start_at.value) : null; // local time
  if (!at || at <= new Date()) {
    fieldError(form, "start_at", "Choose when it starts: a time in the future.");
    return;
  }
  if (body.deadline && new Date(body.deadline) <= at) {
    fieldError(form, "start_at", "It would start after its deadline: start earlier or move the deadline.");
    return;
  }
  if (all.length > MAX_INLINE) {
    fieldError(form, "submit", `a scheduled batch holds at most ${MAX_INLINE.toLocaleString("en")} items; this one has ${all.length.toLocaleString("en")}`);
    return;
  }
  const created = await api("/v1/schedules", {
    method: "POST",
    body: {
      name, description, run_at: at.toISOString(),
      timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC",
      spec: { job_type, priority, tags, config: body.deadline ? { ...config, deadline: body.deadline } : config, items: all },
    },
  });
  location.assign(`/schedules?created=${encodeURIComponent(created.id)}`);
}

async function createSchedule(body) {
  const { name, description, job_type, priority, tags, config, items: all } = body;
  if (body.deadline) {
    fieldError(form, "submit", "a schedule's runs have no fixed deadline: clear the deadline in the first step");
    return;
  }
  if (all.length > MAX_INLINE) {
    fieldError(form, "submit", `a schedule holds at most ${MAX_INLINE.toLocaleString("en")} items; this batch has ${all.length.toLocaleString("en")}`);
    return;
  }
  const created = await api("/v1/schedules", {
    method: "POST",
    body: {
      name, description, cron: form.cron.value.trim(), timezone: form.timezone.value.trim() || "UTC",
      overlap: form.overlap.value, spec: { job_type, priority, tags, config, items: all },
    },
  });
  location.assign(`/schedules?created=${encodeURIComponent(created.id)}`);
}

async function submit() {
  const start = $("#start");
  if (consolidating()) {
    start.disabled = true;
    try {
      if (scheduled() || later()) {
        const refused = await scheduleConsolidation(form, later() ? "later" : "schedule");
        if (refused) {
          fieldError(form, refused.field, refused.message);
          start.disabled = false;
        }
      } else {
        await startConsolidation(form);
      }
    } catch (error) {
      clearErrors(form);
      showServerErrors(error);
      start.disabled = false;
    }
    return;
  }
  const body = requestBody();
  if (scheduled() || later()) {
    start.disabled = true;
    try {
      await (later() ? createLater(body) : createSchedule(body));
    } catch (error) {
      clearErrors(form);
      showServerErrors(error);
    } finally {
      start.disabled = false;
    }
    return;
  }
  start.disabled = true;
  start.textContent = "Starting…";
  try {
    // Keyed by the whole request: Start pressed again after a failure finds the batch the
    // first press made, and an upload cut short goes on (its chunks that arrived are answered,
    // not added twice).
    const key = idempotencyKey("wizard", body);
    let batch;
    if (body.items.length <= MAX_INLINE) {
      batch = await api("/v1/batches", { method: "POST", body, key });
    } else {
      const { items: all, ...rest } = body;
      batch = await api("/v1/batches", { method: "POST", body: { ...rest, draft: true }, key });
      if (UNSUBMITTED.includes(batch.status)) {
        for (let i = 0, n = 0; i < all.length; i += UPLOAD_CHUNK, n += 1) {
          start.textContent = `Uploading ${Math.min(i + UPLOAD_CHUNK, all.length).toLocaleString("en")} / ${all.length.toLocaleString("en")}…`;
          const lines = all.slice(i, i + UPLOAD_CHUNK).map((x) => JSON.stringify(x)).join("\n");
          await api(`/v1/batches/${batch.id}/items`, { method: "POST", body: lines, contentType: "application/x-ndjson", key: `${key}#${n}` });
        }
        batch = await submitOnce(batch.id);
      }
    }
    location.assign(`/batches/${batch.id}`);
  } catch (error) {
    clearErrors(form);
    showServerErrors(error);
    start.disabled = false;
    start.textContent = "Start now";
  }
}

// Submits the draft; one a lost answer left submitted already is taken as it is.
async function submitOnce(id) {
  try {
    return await api(`/v1/batches/${id}/submit`, { method: "POST" });
  } catch (error) {
    if (error.status !== 409) throw error;
    const batch = await api(`/v1/batches/${id}`);
    if (UNSUBMITTED.includes(batch.status)) throw error;
    return batch;
  }
}

async function init() {
  try {
    jobTypes = await api("/v1/job-types");
  } catch (error) {
    toast(errorText(error), "error");
    return;
  }
  const select = form.job_type;
  select.replaceChildren(
    h("option", { value: "" }, jobTypes.length ? "Choose a job type…" : "No executor announced a job type yet"),
    ...jobTypes.map((t) => h("option", { value: t.name }, t.name)),
  );
  const preset = new URLSearchParams(location.search).get("job_type");
  if (preset && jobTypes.some((t) => t.name === preset)) select.value = preset;
  chooseJobType();
}

// The wizard's batch as a template (POST /v1/templates), from the review step.
async function saveTemplate(event) {
  event.preventDefault();
  const dialogForm = $("#save-template-form");
  clearErrors(dialogForm);
  const { name, description, priority, tags, job_type: jobType, config, items: all } = requestBody();
  const spec = { job_type: jobType, priority, tags, config };
  if (dialogForm.with_items.checked && all.length) spec.items = all;
  const body = {
    name: dialogForm.name.value.trim() || name,
    description,
    category: dialogForm.category.value.trim() || "general",
    visibility: dialogForm.visibility.value,
    spec,
  };
  try {
    const created = await api("/v1/templates", { method: "POST", body });
    $("#save-template-dialog").close();
    toast(`Saved template ${created.name}; find it under Templates.`, "ok");
  } catch (error) {
    const p = error.problem || {};
    const first = (p.errors || [])[0];
    const where = first && Array.isArray(first.loc) ? first.loc.filter((x) => x !== "body").join(".") : "";
    fieldError(dialogForm, ["name", "category"].includes(where) ? where : "submit", first ? `${where}: ${first.msg}` : errorText(error));
  }
}

function openSaveTemplate() {
  const dialogForm = $("#save-template-form");
  clearErrors(dialogForm);
  dialogForm.name.value = form.name.value.trim();
  $("#save-template-dialog").showModal();
  dialogForm.name.focus();
}

if (startPage()) {
  form.name.focus();
  $("#save-template")?.addEventListener("click", () => {
    for (const n of [1, 2, 3]) {
      if (!validate(n)) {
        showStep(n);
        validate(n);
        return;
      }
    }
    openSaveTemplate();
  });
  $("#save-template-form")?.addEventListener("submit", saveTemplate);
  $("#st-cancel")?.addEventListener("click", () => $("#save-template-dialog").close());
  wireItems();
  wireConsolidation(form, (error) => toast(errorText(error), "error"));
  for (const radio of $$('input[name="when"]', form)) radio.addEventListener("change", onWhen);
  for (const radio of $$('input[name="config.execution"]', form)) radio.addEventListener("change", onExecution);
  form.cron.addEventListener("input", previewSoon);
  form.timezone.addEventListener("input", previewSoon);
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (zone) form.timezone.value = zone;
  $("#zones").replaceChildren(...(Intl.supportedValuesOf?.("timeZone") || []).map((z) => h("option", { value: z })));
  form.job_type.addEventListener("change", chooseJobType);
  $("#next").addEventListener("click", () => validate(step) && showStep(step + 1));
  $("#back").addEventListener("click", () => showStep(step - 1));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (step !== 4) {
      if (validate(step)) showStep(step + 1);
      return;
    }
    for (const n of [1, 2, 3]) {
      if (!validate(n)) {
        showStep(n);
        validate(n);
        return;
      }
    }
    submit();
  });
  init();
}
