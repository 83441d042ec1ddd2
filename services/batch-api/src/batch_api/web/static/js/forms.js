// What the template, schedule and key forms share: JSON lines typed into a textarea, the
// server's 422 field errors placed next to their fields, and tabs.

import { $$, errorText, fieldError } from "./ui.js";

// Items from JSON lines (one object per line, blank lines skipped), or a JSON array.
// Returns { items } or { error } naming the line.
export function parseItems(text) {
  const trimmed = text.trim();
  if (!trimmed) return { items: [] };
  if (trimmed.startsWith("[")) {
    try {
      const list = JSON.parse(trimmed);
      if (list.every((x) => x && typeof x === "object" && !Array.isArray(x))) return { items: list };
      return { error: "every item must be a JSON object" };
    } catch (e) {
      return { error: `not valid JSON: ${e.message}` };
    }
  }
  const items = [];
  const lines = trimmed.split("\n");
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i].trim();
    if (!line) continue;
    let value;
    try {
      value = JSON.parse(line);
    } catch {
      return { error: `line ${i + 1} is not valid JSON` };
    }
    if (!value || typeof value !== "object" || Array.isArray(value)) {
      return { error: `line ${i + 1} is not a JSON object` };
    }
    items.push(value);
  }
  return { items };
}

export function commaList(text) {
  return String(text || "").split(",").map((t) => t.trim()).filter(Boolean);
}

// Places a problem's field errors under the fields they name (`loc` without "body", joined
// by dots; `aliases` maps a server name to the form's). Anything unplaced goes to `submit`.
export function showProblem(form, error, aliases = {}) {
  const p = error.problem || {};
  let placed = false;
  for (const e of p.errors || []) {
    if (e.item !== undefined) {
      // An item that does not match the job type's input schema.
      const message = `item ${e.item + 1}${e.path ? ` (${e.path})` : ""}: ${e.msg}`;
      for (const name of [aliases.items, "items", "spec.items"]) {
        if (name && fieldError(form, name, message)) {
          placed = true;
          break;
        }
      }
      continue;
    }
    if (!Array.isArray(e.loc)) continue;
    const loc = e.loc[0] === "body" ? e.loc.slice(1) : e.loc;
    const full = loc.join(".");
    const candidates = [aliases[full], full, aliases[loc.slice(0, 2).join(".")], loc.slice(0, 2).join("."), aliases[loc[0]], String(loc[0])];
    const message = String(e.msg || "").replace(/^Value error, /, "");
    for (const name of candidates) {
      if (name && fieldError(form, name, message)) {
        placed = true;
        break;
      }
    }
  }
  if (!placed) fieldError(form, "submit", errorText(error));
}

// Arrow keys and clicks move between the tabs of a tablist; `onSelect(tab)` after each move.
export function wireTabs(tablist, onSelect = () => {}) {
  const tabs = $$('[role="tab"]', tablist);
  const select = (tab) => {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
      const panel = document.getElementById(t.getAttribute("aria-controls"));
      if (panel) panel.hidden = !on;
    }
    onSelect(tab);
  };
  for (const tab of tabs) {
    tab.addEventListener("click", () => select(tab));
    tab.addEventListener("keydown", (event) => {
      const at = tabs.indexOf(tab);
      const next = event.key === "ArrowRight" ? at + 1 : event.key === "ArrowLeft" ? at - 1 : null;
      if (next === null) return;
      const target = tabs[(next + tabs.length) % tabs.length];
      target.focus();
      select(target);
    });
  }
  return select;
}
