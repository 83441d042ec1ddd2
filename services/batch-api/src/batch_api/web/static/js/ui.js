// Small DOM and formatting helpers shared by the pages, and the page start-up: a page that
// needs a key sends an anonymous visitor to the sign-in page and hides what the role may not do.

import { api, apiKey, mayOperate, session, signOut } from "./api.js";

export const TERMINAL = new Set([
  "completed",
  "completed_with_errors",
  "failed",
  "cancelled",
  "rolled_back",
  "rollback_failed",
]);
export const ACTIVE = new Set(["running", "paused", "retrying", "rolling_back"]);
export const UNSUBMITTED = ["draft", "uploading"]; // a draft, or one being uploaded
export const WAITING = new Set([...UNSUBMITTED, "queued"]);

// h("a", {href: "/x", class: "y"}, "text", child) → an element. Attribute values of false or
// null are left out; "on…" keys add listeners. Children may be strings, nodes or arrays.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

export function fmtNumber(n) {
  return n === null || n === undefined ? "–" : Number(n).toLocaleString("en");
}

/** A batch's failed jobs apart: `errors`, and `awaiting`, those parked for a person's
 * decision (counted in `failed` by the API, but no error of the batch). */
export function failuresOf(progress) {
  const awaiting = progress.awaiting_decision || 0;
  return { errors: (progress.failed || 0) - awaiting, awaiting };
}

/** A percent with one decimal that never claims all or none when it is not so: 99.96
 * reads "99.9%" (not "100.0%" with a job still to run, or one failed in 30,000), 0.04
 * reads "0.1%"; a dash for unknown. */
export function fmtPercent(percent) {
  if (percent === null || percent === undefined) return "–";
  let shown = Math.round(percent * 10) / 10;
  if (shown >= 100 && percent < 100) shown = 99.9;
  else if (shown <= 0 && percent > 0) shown = 0.1;
  return `${shown.toFixed(1)}%`;
}

/** "1 job", "3 jobs": a count with its noun, singular for one. */
export function fmtCount(n, noun, plural = `${noun}s`) {
  return `${fmtNumber(n)} ${n === 1 ? noun : plural}`;
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  const hours = Math.floor(s / 3600);
  return `${hours}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

export function fmtTime(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  const today = new Date().toDateString() === date.toDateString();
  return today
    ? date.toLocaleTimeString("en-GB")
    : date.toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" });
}

export function statusLabel(status) {
  return String(status || "unknown").replaceAll("_", " ");
}

export function badge(status) {
  return h("span", { class: `badge s-${status}` }, statusLabel(status));
}

// How bad a failure is (low, medium, high, critical), as a small coloured badge.
export function severityBadge(severity) {
  return h("span", { class: `badge sev sev-${severity}`, title: `severity: ${severity}` }, severity);
}

// Badges of the scheduling policies: "at risk" while the deadline is threatened (at its pace
// the batch would finish late), "waiting for <links>" while a queued batch waits for the
// batches it depends on.
export function policyBadges(b) {
  const out = [];
  if (b.deadline_at_risk && !TERMINAL.has(b.status)) {
    out.push(h("span", {
      class: "badge policy risk",
      title: "At its current pace this batch would finish after its deadline",
    }, "at risk"));
  }
  if (b.config?.execution === "sequential") {
    out.push(h("span", { class: "badge policy", title: "One job at a time, in item order" }, "sequential"));
  }
  const waiting = b.status === "queued" ? b.waiting_for || [] : [];
  if (waiting.length) {
    out.push(h(
      "span",
      { class: "badge policy waiting", title: "It starts once these batches have ended" },
      "waiting for ",
      waiting.map((dep, i) => [i ? ", " : "", h("a", { href: `/batches/${dep}` }, dep)]),
    ));
  }
  return out;
}

// Applies the policy fields of an SSE `progress` event to a batch; returns the rest.
export function takePolicy(batch, data) {
  const { batch_id, status, seq, waiting_for, deadline_at_risk, ...progress } = data;
  if (waiting_for !== undefined) batch.waiting_for = waiting_for;
  if (deadline_at_risk !== undefined) batch.deadline_at_risk = deadline_at_risk;
  if (status) batch.status = status;
  if (seq !== undefined) batch.seq = Math.max(batch.seq ?? 0, seq);
  return progress;
}

// What a live stream shows of a batch. The store's view can be behind the stream (the live feed
// sees a snapshot before the reporter has projected it), so a read of the batch with an older
// `seq` than the one shown keeps these as shown instead of taking them back.
const STREAMED = ["status", "reason", "progress", "waiting_for", "deadline_at_risk", "seq"];

export function keepNewer(read, shown) {
  if (shown && (read.seq ?? 0) < (shown.seq ?? 0)) {
    for (const key of STREAMED) read[key] = shown[key];
  }
  return read;
}

// A progress bar with completed, failed and not-run (cancelled or skipped) segments;
// `progress` is the API's progress object.
export function progressBar(progress, label) {
  const total = progress.total || 0;
  const pct = (n) => (total ? (100 * n) / total : 0);
  const done = Math.round(progress.percent ?? 0);
  return h(
    "div",
    {
      class: "bar",
      role: "progressbar",
      "aria-valuemin": 0,
      "aria-valuemax": 100,
      "aria-valuenow": done,
      "aria-label": label || "progress",
    },
    h("span", { class: "seg ok", style: `width:${pct(progress.completed || 0)}%` }),
    // of the failed, those waiting for a person's decision are no errors: amber, not red
    h("span", { class: "seg bad", style: `width:${pct(failuresOf(progress).errors)}%` }),
    h("span", { class: "seg waiting", style: `width:${pct(failuresOf(progress).awaiting)}%` }),
    h("span", {
      class: "seg none",
      style: `width:${pct((progress.cancelled || 0) + (progress.skipped || 0))}%`,
    }),
  );
}

// How much of a rollback is done, in words: "planning…" until the rollback service has read
// the backups and knows how many jobs it restores.
export function restoredText(rb) {
  if (rb.planning) return "planning…";
  if (rb.status !== "rolling_back" && !rb.done) return "nothing";
  return `${fmtNumber(rb.done)} / ${fmtNumber(rb.total)}`;
}

// A rollback's bar: how many of its jobs were restored, in the rollback's colour.
export function rollbackBar(rb, label) {
  const bar = progressBar({ total: rb.total, completed: rb.done, percent: rb.percent }, label);
  bar.classList.add("restoring");
  return bar;
}

let toastRegion;
export function toast(message, kind = "info") {
  toastRegion ||= $("#toasts");
  const item = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, message);
  toastRegion.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 9000 : 4000);
}

// A <dialog> closed by its buttons with a value; resolves with that value ("" on Escape).
export function ask(dialog) {
  return new Promise((resolve) => {
    dialog.returnValue = "";
    dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true });
    dialog.showModal();
  });
}

export function isAdmin() {
  return (session() || {}).role === "admin";
}

export function errorText(error) {
  const p = error.problem || {};
  if (p.title && p.detail && p.title !== p.detail) return `${p.title}: ${p.detail}`;
  return error.message || String(error);
}

// Shows an error under the field named `name` (its `data-error-for` slot).
export function fieldError(form, name, message) {
  const slot = form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
  const field = form.querySelector(`[name="${CSS.escape(name)}"]`);
  if (slot) slot.textContent = message;
  if (field) {
    field.setAttribute("aria-invalid", "true");
    if (slot) field.setAttribute("aria-describedby", slot.id);
  }
  return !!slot;
}

export function clearErrors(form) {
  for (const slot of $$("[data-error-for]", form)) slot.textContent = "";
  for (const field of $$("[aria-invalid]", form)) field.removeAttribute("aria-invalid");
}

// Start-up of every signed-in page: sign-in redirect, who is signed in, role gating.
export function startPage() {
  if (!apiKey()) {
    const next = location.pathname + location.search;
    location.replace(`/signin?next=${encodeURIComponent(next)}`);
    return null;
  }
  const who = session() || {};
  const slot = $("#who");
  if (slot) {
    slot.replaceChildren(
      h("span", { class: "who-name" }, who.user || "?"),
      " ",
      h("span", { class: "role" }, who.role || "?"),
    );
    slot.hidden = false;
  }
  const out = $("#signout");
  if (out) {
    out.hidden = false;
    out.addEventListener("click", () => {
      signOut();
      location.assign("/signin");
    });
  }
  if (!mayOperate()) {
    for (const el of $$("[data-operator]")) el.remove();
  }
  if (who.role !== "admin") {
    for (const el of $$("[data-admin]")) el.remove();
  }
  document.body.classList.add(mayOperate() ? "can-operate" : "read-only");
  document.addEventListener("input", clearOnEdit);
  return who;
}

// A field's error goes as soon as the person changes the field: it no longer describes it.
function clearOnEdit(event) {
  const field = event.target;
  if (!field.name || field.getAttribute("aria-invalid") !== "true") return;
  field.removeAttribute("aria-invalid");
  const slot = field.form?.querySelector(`[data-error-for="${CSS.escape(field.name)}"]`);
  if (slot) slot.textContent = "";
}

// Reads that can overlap (a filter applied while the page's first read is under way) answer in
// any order: `const current = nextRead()` before each read, and an answer for which `current()`
// is false was overtaken by a newer read and is dropped, not shown over the newer one's.
export function readOrder() {
  let reads = 0;
  return () => {
    const read = ++reads;
    return () => read === reads;
  };
}

// A table filled a page at a time from a `/v1` listing (`{items, next_cursor}`): the returned
// `load()` reads the first page again (with `query()`'s parameters), `load(true)` appends the
// next one; `more` (a "Load more" button) shows while there is one, `empty` while no row. An
// answer to a read that a newer `load()` overtook is dropped (the page's first read, say,
// answering after the filter a person applied meanwhile).
export function pagedTable({ path, query, row, rows, more, empty }) {
  let cursor = null;
  const nextRead = readOrder();
  let latest = () => true; // the first page's read; "Load more" continues it
  async function load(next = false) {
    if (!next) {
      cursor = null;
      latest = nextRead();
    }
    const current = latest;
    const q = query();
    if (cursor) q.set("cursor", cursor);
    let page;
    try {
      page = await api(`${path}?${q}`);
    } catch (error) {
      if (current()) toast(errorText(error), "error");
      return;
    }
    if (!current()) return;
    const made = page.items.map(row);
    if (next) rows.append(...made);
    else rows.replaceChildren(...made);
    cursor = page.next_cursor;
    more.hidden = !cursor;
    empty.hidden = rows.children.length > 0;
  }
  more.addEventListener("click", () => load(true));
  return load;
}
