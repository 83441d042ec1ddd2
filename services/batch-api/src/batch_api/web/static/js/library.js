// The template library: its templates by id, filtered by text, category and status, a page
// at a time. A merged template names the one it was merged into; a document written outside
// the API says what it lacks (a consolidation refuses it until it is mended).

import { $, fmtTime, h, pagedTable, startPage } from "./ui.js";

const PAGE = 100;
const form = $("#l-filters");

function status(t) {
  const badge = h("span", { class: `badge lib-${t.status}` }, t.status);
  if (t.status === "merged" && t.canonical_id) {
    return [badge, h("div", { class: "muted small" }, `into ${t.canonical_id}`)];
  }
  return badge;
}

function body(t) {
  if (t.defects && t.defects.length) {
    return h("td", { class: "warn", title: `Written outside the API: mend it (PATCH /v1/library/templates/${t.id}) or delete it` },
      `Not a whole template: ${t.defects.join(", ")}`);
  }
  const text = t.body.length > 120 ? `${t.body.slice(0, 120)}…` : t.body;
  return h("td", { class: "muted", title: t.body }, text);
}

function row(t) {
  return h(
    "tr",
    { id: `template-${t.id}` },
    h("td", {}, t.name ? h("strong", {}, t.name) : null, h("div", { class: "muted small" }, t.id)),
    h("td", {}, t.category),
    h("td", {}, status(t)),
    body(t),
    h("td", { class: "num" }, String(t.version)),
    h("td", {}, t.updated_at ? h("time", { datetime: t.updated_at }, fmtTime(t.updated_at)) : "–"),
  );
}

function query() {
  const q = new URLSearchParams({ limit: String(PAGE) });
  for (const [k, v] of new FormData(form)) if (String(v).trim()) q.set(k, String(v).trim());
  return q;
}

if (startPage()) {
  const load = pagedTable({
    path: "/v1/library/templates", query, row, rows: $("#l-rows"), more: $("#l-more"), empty: $("#l-empty"),
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  load();
}
