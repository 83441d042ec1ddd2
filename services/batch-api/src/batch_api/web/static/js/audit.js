// The audit log (admins): every state-changing call of the tenant, newest first, filtered by
// user, method, resource and dates, a page at a time.

import { $, fmtTime, h, isAdmin, pagedTable, startPage } from "./ui.js";

const PAGE = 50;
const form = $("#a-filters");

function resourceLink(id, path = "") {
  if (!id) return "–";
  if (id.startsWith("b_")) return h("a", { href: `/batches/${id}` }, id);
  // batch templates and the library's templates both have t_ ids: the call's path tells
  if (id.startsWith("t_")) return h("a", { href: path.startsWith("/v1/library/") ? "/library" : "/templates" }, id);
  if (id.startsWith("s_")) return h("a", { href: "/schedules" }, id);
  return h("code", {}, id);
}

function row(e) {
  return h(
    "tr",
    { dataset: { outcome: e.outcome } },
    h("td", {}, h("time", { datetime: e.at }, fmtTime(e.at))),
    h("td", {}, e.user),
    h("td", {}, e.role),
    h("td", {}, h("code", {}, e.action), h("div", { class: "muted small" }, `${e.method} ${e.path}`)),
    h("td", {}, resourceLink(e.resource, e.path)),
    h("td", {}, h("span", { class: `badge ${e.outcome === "ok" ? "s-completed" : "s-failed"}` }, `${e.status} ${e.outcome}`)),
  );
}

function query() {
  const q = new URLSearchParams({ limit: String(PAGE) });
  for (const [k, v] of new FormData(form)) {
    if (!v) continue;
    if (k === "since") q.set(k, new Date(`${v}T00:00:00`).toISOString());
    else if (k === "until") q.set(k, new Date(new Date(`${v}T00:00:00`).getTime() + 86_400_000).toISOString());
    else q.set(k, String(v));
  }
  return q;
}

if (startPage()) {
  if (!isAdmin()) {
    $("#admins-only").hidden = false;
  } else {
    const load = pagedTable({
      path: "/v1/audit", query, row, rows: $("#a-rows"), more: $("#a-more"), empty: $("#a-empty"),
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      load();
    });
    load();
  }
}
