import { signIn } from "./api.js";
import { $, clearErrors, errorText, fieldError } from "./ui.js";

const form = $("#signin-form");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(form);
  const key = form.key.value.trim();
  if (!key) {
    fieldError(form, "key", "Enter an API key.");
    form.key.focus();
    return;
  }
  try {
    await signIn(key);
  } catch (error) {
    fieldError(form, "key", error.status === 401 ? "This key is unknown or revoked." : errorText(error));
    form.key.focus();
    return;
  }
  const next = new URLSearchParams(location.search).get("next") || "/";
  location.assign(next.startsWith("/") && !next.startsWith("//") ? next : "/");
});
form.key.focus();
