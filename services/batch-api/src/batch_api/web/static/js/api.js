// The JSON API as the dashboard uses it: the signed-in key from sessionStorage on every call,
// problem details turned into ApiError, and server-sent events read with fetch (EventSource
// cannot send an Authorization header).

const KEY = "batchyard.key";
const WHO = "batchyard.session";

export function apiKey() {
  return sessionStorage.getItem(KEY);
}

export function session() {
  try {
    return JSON.parse(sessionStorage.getItem(WHO) || "null");
  } catch {
    return null;
  }
}

export function signOut() {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(WHO);
}

export function mayOperate() {
  const who = session();
  return !!who && (who.role === "operator" || who.role === "admin");
}

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

function authHeaders(key) {
  return { Authorization: `Bearer ${key}` };
}

function toSignIn() {
  const next = location.pathname + location.search;
  location.assign(`/signin?next=${encodeURIComponent(next)}`);
}

// Checks a key and remembers it with its principal; throws ApiError when it is refused.
export async function signIn(key) {
  const response = await fetch("/ui/session", { headers: authHeaders(key) });
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body);
  sessionStorage.setItem(KEY, key);
  sessionStorage.setItem(WHO, JSON.stringify(body));
  return body;
}

// The Idempotency-Key of a request that makes something, one per `scope` and body: pressing
// the button again after a failure (no answer, a server error) sends the same key, so the
// server answers with what the first press made instead of making it twice; a changed form
// gets a new key. (crypto.getRandomValues: randomUUID needs a secure context.)
const heldKeys = new Map();
export function idempotencyKey(scope, body) {
  const text = JSON.stringify(body);
  const held = heldKeys.get(scope);
  if (held && held.text === text) return held.key;
  const random = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0"));
  const key = `ui-${random.join("")}`;
  heldKeys.set(scope, { text, key });
  return key;
}

// One API call. `body` objects are sent as JSON; strings as they are (with `contentType`).
// Returns the parsed JSON (or null for 204), or the Response itself with `raw: true`.
export async function api(path, { method = "GET", body, contentType, raw = false, signal, key: idempotency } = {}) {
  const key = apiKey();
  if (!key) {
    toSignIn();
    throw new ApiError(401, { title: "Not signed in" });
  }
  const headers = authHeaders(key);
  if (idempotency) headers["Idempotency-Key"] = idempotency;
  let payload;
  if (body !== undefined) {
    if (typeof body === "string" || body instanceof Blob) {
      payload = body;
      headers["Content-Type"] = contentType || "application/json";
    } else {
      payload = JSON.stringify(body);
      headers["Content-Type"] = "application/json";
    }
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload, signal });
  } catch (error) {
    if (!(error instanceof TypeError)) throw error; // an abort stays an abort
    throw new ApiError(0, {
      title: "No answer from the server",
      detail: idempotency
        ? "the connection failed before an answer came; trying again is safe (it will not be made twice)"
        : "the connection failed before an answer came; check it and try again",
    });
  }
  if (response.status === 401) {
    signOut();
    toSignIn();
    throw new ApiError(401, await response.json().catch(() => null));
  }
  if (!response.ok) {
    throw new ApiError(response.status, await response.json().catch(() => null));
  }
  if (raw) return response;
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

// Downloads an authenticated resource as a file (an <a href> cannot carry the key).
export async function download(path, fallbackName) {
  const response = await api(path, { raw: true });
  const disposition = response.headers.get("content-disposition") || "";
  const match = /filename="?([^";]+)"?/.exec(disposition);
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = match ? match[1] : fallbackName;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// Parses a text/event-stream body; calls onEvent(name, data) for each event.
async function readEvents(response, onEvent) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") name = text;
        else if (field === "data") data.push(text);
      }
      if (!data.length) continue;
      let parsed = data.join("\n");
      try {
        parsed = JSON.parse(parsed);
      } catch {
        /* a non-JSON payload is passed on as text */
      }
      onEvent(name, parsed);
    }
  }
}

// Follows an SSE stream, reconnecting with backoff until closed. `onEvent(name, data)` gets
// every event; `onState("live" | "reconnecting" | "unavailable" | "ended")` the connection.
// A 404/405 answer means the server has no such stream: "unavailable", and it stops.
export function follow(path, onEvent, onState = () => {}) {
  const control = new AbortController();
  let stopped = false;
  (async () => {
    let delay = 1000;
    while (!stopped) {
      let ended = false;
      try {
        const response = await fetch(path, {
          headers: { ...authHeaders(apiKey() || ""), Accept: "text/event-stream" },
          signal: control.signal,
          cache: "no-store",
        });
        const type = response.headers.get("content-type") || "";
        if ([404, 405].includes(response.status) || (response.ok && !type.includes("event-stream"))) {
          onState("unavailable");
          return;
        }
        if (response.status === 401) {
          signOut();
          toSignIn();
          return;
        }
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        onState("live");
        delay = 1000;
        await readEvents(response, (name, data) => {
          if (name === "end") ended = true;
          onEvent(name, data);
        });
      } catch (error) {
        if (stopped || error.name === "AbortError") return;
      }
      if (ended) {
        onState("ended");
        return;
      }
      if (stopped) return;
      onState("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 15_000);
    }
  })();
  return {
    close() {
      stopped = true;
      control.abort();
    },
  };
}
