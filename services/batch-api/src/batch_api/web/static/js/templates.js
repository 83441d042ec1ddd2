// Batch templates: listed by category; created or edited from a form or as JSON, shared with
// users or the tenant, and instantiated with overrides (then on to the new batch's page).

import { api, idempotencyKey, mayOperate, session } from "./api.js";
import { commaList, parseItems, showProblem, wireTabs } from "./forms.js";
import { $, ask, clearErrors, errorText, fieldError, fmtNumber, fmtTime, h, isAdmin, readOrder, startPage, toast } from "./ui.js";

const filters = $("#t-filters");
const dialog = $("#template-dialog");
const form = $("#template-form");
const useDialog = $("#use-dialog");
const useForm = $("#use-form");
let editing = null; // the template being edited, null when creating
let using = null; // the template being instantiated
let mode = "form";
const shown = new Map();

function mayChange(t) {
  const who = session() || {};
  return mayOperate() && (isAdmin() || who.user === t.owner);
}

function itemsText(t) {
  const items = t.spec.items;
  return items ? `${fmtNumber(items.length)} items` : "items given at each use";
}

function card(t) {
  const actions = [];
  if (mayOperate()) actions.push(h("button", { type: "button", class: "primary", onclick: () => openUse(t) }, "Use…"));
  if (mayChange(t)) {
    actions.push(h("button", { type: "button", onclick: () => openEditor(t) }, "Edit"));
    actions.push(h("button", { type: "button", class: "danger", onclick: () => remove(t) }, "Delete"));
  }
  const sharing = t.visibility === "tenant" ? "everyone in the tenant" : t.shared_with.length ? `shared with ${t.shared_with.join(", ")}` : "private";
  return h(
    "article",
    { class: "batch template", id: `template-${t.id}`, "aria-labelledby": `tn-${t.id}` },
    h("header", {}, h("h3", { class: "name", id: `tn-${t.id}` }, t.name), h("span", { class: `badge v-${t.visibility}` }, sharing)),
    t.description ? h("p", { class: "desc" }, t.description) : null,
    h(
      "dl",
      { class: "facts" },
      h("div", {}, h("dt", {}, "Job type"), h("dd", {}, t.spec.job_type)),
      h("div", {}, h("dt", {}, "Items"), h("dd", {}, itemsText(t))),
      h("div", {}, h("dt", {}, "Priority"), h("dd", {}, String(t.spec.priority))),
      h("div", {}, h("dt", {}, "Used"), h("dd", { class: "uses" }, `${fmtNumber(t.usage_count)}×`)),
      h("div", {}, h("dt", {}, "Last used"), h("dd", {}, fmtTime(t.last_used_at))),
      h("div", {}, h("dt", {}, "Owner"), h("dd", {}, t.owner)),
    ),
    actions.length ? h("div", { class: "card-actions" }, actions) : null,
  );
}

async function loadCategories() {
  const categories = await api("/v1/templates/categories");
  const select = filters.category;
  const current = select.value;
  select.replaceChildren(
    h("option", { value: "" }, "all"),
    ...categories.map((c) => h("option", { value: c.category }, `${c.category} (${c.templates})`)),
  );
  select.value = categories.some((c) => c.category === current) ? current : "";
  $("#category-list").replaceChildren(...categories.map((c) => h("option", { value: c.category })));
}

const nextRead = readOrder();

async function load() {
  const current = nextRead();
  const q = new URLSearchParams({ limit: "500" });
  for (const [k, v] of new FormData(filters)) if (v) q.set(k, String(v));
  let page;
  try {
    [page] = await Promise.all([api(`/v1/templates?${q}`), loadCategories()]);
  } catch (error) {
    if (current()) toast(errorText(error), "error");
    return;
  }
  if (!current()) return;
  shown.clear();
  const groups = new Map();
  for (const t of page.items) {
    shown.set(t.id, t);
    if (!groups.has(t.category)) groups.set(t.category, []);
    groups.get(t.category).push(t);
  }
  const names = [...groups.keys()].sort();
  $("#t-groups").replaceChildren(
    ...names.map((name) =>
      h(
        "section",
        { class: "category", "aria-labelledby": `cat-${name}` },
        h("h2", { id: `cat-${name}` }, name, " ", h("span", { class: "muted count" }, `${groups.get(name).length}`)),
        h("div", { class: "batch-list" }, groups.get(name).map(card)),
      ),
    ),
  );
  $("#t-empty").hidden = page.items.length > 0;
  $("#t-groups").setAttribute("aria-busy", "false");
}

// ---- create and edit -------------------------------------------------------------------

function formBody() {
  const { items, error } = parseItems(form.elements["spec.items"].value);
  if (error) return { error: ["spec.items", error] };
  const tags = commaList(form.elements["spec.tags"].value);
  const body = {
    name: form.name.value.trim(),
    description: form.description.value.trim(),
    category: form.category.value.trim() || "general",
    visibility: form.visibility.value,
    shared_with: commaList(form.shared_with.value),
    spec: {
      job_type: form.elements["spec.job_type"].value,
      priority: form.elements["spec.priority"].value,
      tags,
      config: { ...(editing ? editing.spec.config : {}), max_concurrent_jobs: Number(form.elements["spec.config.max_concurrent_jobs"].value) },
    },
  };
  if (items.length) body.spec.items = items;
  if (!body.name) return { error: ["name", "Give the template a name."] };
  if (!body.spec.job_type) return { error: ["spec.job_type", "Choose a job type."] };
  return { body };
}

function jsonBody() {
  let body;
  try {
    body = JSON.parse(form.json.value);
  } catch (e) {
    return { error: ["json", `Not valid JSON: ${e.message}`] };
  }
  if (!body || typeof body !== "object" || Array.isArray(body)) return { error: ["json", "The template must be a JSON object."] };
  // The sharing fields below the tabs apply to JSON too unless the JSON sets them.
  body.visibility ??= form.visibility.value;
  body.shared_with ??= commaList(form.shared_with.value);
  return { body };
}

function fillForm(t) {
  form.name.value = t ? t.name : "";
  form.description.value = t ? t.description : "";
  form.category.value = t ? t.category : "general";
  form.visibility.value = t ? t.visibility : "private";
  form.shared_with.value = t ? t.shared_with.join(", ") : "";
  form.elements["spec.job_type"].value = t ? t.spec.job_type : "";
  form.elements["spec.priority"].value = t ? String(t.spec.priority) : "medium";
  form.elements["spec.tags"].value = t ? t.spec.tags.join(", ") : "";
  form.elements["spec.config.max_concurrent_jobs"].value = t ? t.spec.config.max_concurrent_jobs : 50;
  form.elements["spec.items"].value = t && t.spec.items ? t.spec.items.map((i) => JSON.stringify(i)).join("\n") : "";
  form.json.value = JSON.stringify(
    t
      ? { name: t.name, description: t.description, category: t.category, spec: t.spec }
      : { name: "", category: "general", spec: { job_type: "demo.sleep", priority: "medium", items: [{ seconds: 0.5 }] } },
    null,
    2,
  );
}

function openEditor(t = null) {
  editing = t;
  clearErrors(form);
  fillForm(t);
  $("#td-title").textContent = t ? `Edit ${t.name}` : "New template";
  $("#td-save").textContent = t ? "Save changes" : "Save template";
  dialog.showModal();
  form.name.focus();
}

async function save(event) {
  event.preventDefault();
  clearErrors(form);
  const { body, error } = mode === "json" ? jsonBody() : formBody();
  if (error) {
    invalid(form, error[0], error[1]);
    return;
  }
  const button = $("#td-save");
  button.disabled = true;
  try {
    const saved = editing
      ? await api(`/v1/templates/${editing.id}`, { method: "PATCH", body })
      : await api("/v1/templates", { method: "POST", body });
    dialog.close();
    toast(`${editing ? "Saved" : "Created"} template ${saved.name}.`, "ok");
    await load();
  } catch (err) {
    showProblem(form, err, mode === "json" ? { name: "json", spec: "json", category: "json", description: "json" } : {});
  } finally {
    button.disabled = false;
  }
}

function invalid(f, name, message) {
  fieldError(f, name, message);
  f.querySelector(`[name="${CSS.escape(name)}"]`)?.focus();
}

// ---- instantiate -----------------------------------------------------------------------

function openUse(t) {
  using = t;
  clearErrors(useForm);
  useForm.reset();
  $("#ud-title").textContent = `Start a batch from ${t.name}`;
  $("#ud-about").textContent = `${t.spec.job_type}, priority ${t.spec.priority}, ${itemsText(t)}. Empty fields keep the template's values.`;
  useForm.name.placeholder = t.name;
  $("#uf-items-hint").textContent = t.spec.items ? "(optional: JSON lines that replace the template's items)" : "(required: JSON lines, one item per line)";
  useDialog.showModal();
  useForm.name.focus();
}

async function instantiate(event) {
  event.preventDefault();
  clearErrors(useForm);
  const body = {};
  if (useForm.name.value.trim()) body.name = useForm.name.value.trim();
  if (useForm.priority.value) body.priority = useForm.priority.value;
  if (useForm.tags.value.trim()) body.tags = commaList(useForm.tags.value);
  if (useForm.max_concurrent_jobs.value) body.config = { max_concurrent_jobs: Number(useForm.max_concurrent_jobs.value) };
  if (useForm.deadline.value) {
    const deadline = new Date(useForm.deadline.value); // the browser's local time
    if (deadline <= new Date()) {
      invalid(useForm, "deadline", "Choose a time in the future, or leave it empty.");
      return;
    }
    body.deadline = deadline.toISOString();
  }
  const { items, error } = parseItems(useForm.items.value);
  if (error) {
    invalid(useForm, "items", error);
    return;
  }
  if (items.length) body.items = items;
  else if (!using.spec.items) {
    invalid(useForm, "items", "This template has no items of its own: give at least one.");
    return;
  }
  const button = $("#ud-start");
  button.disabled = true;
  try {
    const key = idempotencyKey(`instantiate:${using.id}`, body); // pressed again: the same batch
    const batch = await api(`/v1/templates/${using.id}/instantiate`, { method: "POST", body, key });
    location.assign(`/batches/${batch.id}`);
  } catch (err) {
    showProblem(useForm, err, { "config.max_concurrent_jobs": "max_concurrent_jobs", config: "max_concurrent_jobs" });
    button.disabled = false;
  }
}

async function remove(t) {
  $("#cd-text").textContent = `“${t.name}” will be deleted. Batches made from it stay.`;
  if ((await ask($("#confirm-dialog"))) !== "yes") return;
  try {
    await api(`/v1/templates/${t.id}`, { method: "DELETE" });
    toast(`Deleted template ${t.name}.`, "ok");
    await load();
  } catch (error) {
    toast(errorText(error), "error");
  }
}

async function loadJobTypes() {
  try {
    const types = await api("/v1/job-types");
    form.elements["spec.job_type"].append(...types.map((t) => h("option", { value: t.name }, t.name)));
  } catch {
    /* the select stays empty; saving says why */
  }
}

if (startPage()) {
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  filters.category.addEventListener("change", load);
  $("#new-template")?.addEventListener("click", () => openEditor());
  $("#td-cancel").addEventListener("click", () => dialog.close());
  $("#ud-cancel").addEventListener("click", () => useDialog.close());
  form.addEventListener("submit", save);
  useForm.addEventListener("submit", instantiate);
  wireTabs($('#template-form [role="tablist"]'), (tab) => {
    mode = tab.id === "tt-json" ? "json" : "form";
    if (mode === "json") {
      // Carry what was typed in the form over to the JSON.
      const { body } = formBody();
      if (body) form.json.value = JSON.stringify(body, null, 2);
    }
  });
  loadJobTypes();
  load();
}
