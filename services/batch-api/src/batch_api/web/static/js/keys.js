// API keys (admins): create one (optionally with its own rate limit) and see its secret once,
// list the tenant's keys, revoke one.

import { api, session } from "./api.js";
import { showProblem } from "./forms.js";
import { $, ask, clearErrors, errorText, fieldError, fmtTime, h, isAdmin, startPage, toast } from "./ui.js";

const form = $("#key-form");

function limitText(k) {
  return k.rate_limit ? `${k.rate_limit.per_s}/s, burst ${k.rate_limit.burst}` : "default";
}

function row(k) {
  const mine = (session() || {}).key_id === k.id;
  return h(
    "tr",
    { id: `key-${k.id}`, dataset: { revoked: String(k.revoked) } },
    h("td", {}, h("strong", {}, k.name), h("div", { class: "muted small" }, h("code", {}, k.id), mine ? " · this session" : "")),
    h("td", {}, k.role),
    h("td", {}, k.user),
    h("td", {}, limitText(k)),
    h("td", {}, fmtTime(k.created_at)),
    h("td", {}, k.revoked ? h("span", { class: "badge s-cancelled" }, `revoked ${fmtTime(k.revoked_at)}`) : h("span", { class: "badge s-completed" }, "active")),
    h("td", {}, k.revoked ? null : h("button", { type: "button", class: "danger", onclick: () => revoke(k, mine) }, "Revoke")),
  );
}

async function load() {
  try {
    const { items } = await api("/v1/keys");
    $("#k-rows").replaceChildren(...items.map(row));
    $("#k-rows").setAttribute("aria-busy", "false");
  } catch (error) {
    toast(errorText(error), "error");
  }
}

async function create(event) {
  event.preventDefault();
  clearErrors(form);
  const body = { name: form.name.value.trim(), role: form.role.value };
  if (form.user.value.trim()) body.user = form.user.value.trim();
  const perS = form.elements["rate_limit.per_s"].value;
  const burst = form.elements["rate_limit.burst"].value;
  if (!body.name) {
    fieldError(form, "name", "Name the key after who or what uses it.");
    form.name.focus();
    return;
  }
  if (burst && !perS) {
    fieldError(form, "rate_limit.per_s", "A burst goes with a rate.");
    return;
  }
  if (perS) body.rate_limit = { per_s: Number(perS), burst: burst ? Number(burst) : Math.max(1, Math.round(Number(perS) * 2)) };
  const button = $("#kf-create");
  button.disabled = true;
  try {
    const created = await api("/v1/keys", { method: "POST", body });
    form.reset();
    $("#secret-value").value = created.key;
    $("#secret-title").textContent = `Copy the new key for ${created.name} now`;
    $("#secret").hidden = false;
    $("#secret-value").focus();
    $("#secret-value").select();
    await load();
  } catch (error) {
    showProblem(form, error);
  } finally {
    button.disabled = false;
  }
}

async function revoke(k, mine) {
  $("#cd-text").textContent = mine
    ? `“${k.name}” is the key of this session: revoking it signs you out.`
    : `Requests with “${k.name}” (${k.role}) will be refused from now on.`;
  if ((await ask($("#confirm-dialog"))) !== "yes") return;
  try {
    await api(`/v1/keys/${k.id}`, { method: "DELETE" });
    toast(`Revoked ${k.name}.`, "ok");
    await load();
  } catch (error) {
    toast(errorText(error), "error");
  }
}

if (startPage()) {
  if (!isAdmin()) {
    $("#admins-only").hidden = false;
  } else {
    form.addEventListener("submit", create);
    $("#secret-copy").addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText($("#secret-value").value);
        toast("Copied.", "ok");
      } catch {
        $("#secret-value").select();
        toast("Select the key and copy it with Ctrl+C.", "info");
      }
    });
    $("#secret-done").addEventListener("click", () => {
      $("#secret-value").value = "";
      $("#secret").hidden = true;
    });
    load();
  }
}
