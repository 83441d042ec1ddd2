// The audit log (admins): every state-changing call of the tenant, newest first, filtered by
// user, method, resource and dates, a page at a time.

import { api } from "./api.js";
import { $, errorText, fmtTime, h, isAdmin, startPage, toast } from "./ui.js";

const PAGE = 50;
const form = $("#a-filters");
let cursor = null;

function resourceLink(id) {
  if (!id) return "–";
  if (id.startsWith("b_")) return h("a", { href: `/batches/${id}` }, id);
  if (id.startsWith("t_")) return h("a", { href: "/templates" }, id);
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
    h("td", {}, resourceLink(e.resource)),
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
  if (cursor) q.set("cursor", cursor);
  return q;
}

async function load(more = false) {
  if (!more) cursor = null;
  let page;
  try {
    page = await api(`/v1/audit?${query()}`);
  } catch (error) {
    toast(errorText(error), "error");
    return;
  }
  const rows = page.items.map(row);
  if (more) $("#a-rows").append(...rows);
  else $("#a-rows").replaceChildren(...rows);
  cursor = page.next_cursor;
  $("#a-more").hidden = !cursor;
  $("#a-empty").hidden = $("#a-rows").children.length > 0;
}

if (startPage()) {
  if (!isAdmin()) {
    $("#admins-only").hidden = false;
  } else {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      load();
    });
    $("#a-more").addEventListener("click", () => load(true));
    load();
  }
}
