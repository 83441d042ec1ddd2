// A form generated from a job type's JSON Schema (the pydantic model's schema): one field per
// property, typed by the schema, and a reader that returns an item or per-field errors.

import { h } from "./ui.js";

function resolve(schema, root) {
  if (schema && schema.$ref && schema.$ref.startsWith("#/$defs/")) {
    return resolve(root.$defs?.[schema.$ref.slice(8)] || {}, root);
  }
  if (schema && Array.isArray(schema.anyOf)) {
    const concrete = schema.anyOf.find((s) => s.type !== "null");
    if (concrete) return { ...resolve(concrete, root), ...schema, anyOf: undefined, nullable: true };
  }
  if (schema && Array.isArray(schema.allOf) && schema.allOf.length === 1) {
    return { ...resolve(schema.allOf[0], root), ...schema, allOf: undefined };
  }
  return schema || {};
}

function kindOf(s) {
  if (Array.isArray(s.enum)) return "enum";
  if (s.type === "boolean") return "boolean";
  if (s.type === "integer" || s.type === "number") return "number";
  if (s.type === "string") return "string";
  if (s.type === "array" && ["string", "integer", "number"].includes(resolve(s.items || {}, {}).type)) return "list";
  return "json";
}

function title(name, s) {
  return s.title || name.replaceAll("_", " ").replace(/^./, (c) => c.toUpperCase());
}

function control(id, name, s, required) {
  const kind = kindOf(s);
  const common = { id, name, required: required || null };
  if (kind === "enum") {
    return h(
      "select",
      common,
      required ? null : h("option", { value: "" }, "—"),
      s.enum.map((v) => h("option", { value: String(v), selected: v === s.default }, String(v))),
    );
  }
  if (kind === "boolean") return h("input", { ...common, type: "checkbox", checked: s.default === true });
  if (kind === "number") {
    return h("input", {
      ...common,
      type: "number",
      step: s.type === "integer" ? "1" : "any",
      min: s.minimum ?? s.exclusiveMinimum ?? null,
      max: s.maximum ?? s.exclusiveMaximum ?? null,
      value: s.default ?? "",
    });
  }
  if (kind === "string") {
    const type = s.format === "uri" ? "url" : s.format === "email" ? "email" : "text";
    return h("input", { ...common, type, maxlength: s.maxLength ?? null, value: s.default ?? "" });
  }
  if (kind === "list") {
    return h("input", { ...common, value: Array.isArray(s.default) ? s.default.join(", ") : "" });
  }
  return h("textarea", { ...common, rows: 3 }, s.default === undefined ? "" : JSON.stringify(s.default));
}

// Renders `names` (all properties when omitted) of `schema` into `container`, field names
// prefixed with `prefix`. Returns read() → {item, errors: [{name, message}]}.
export function renderSchemaForm(container, schema, { prefix = "item.", names } = {}) {
  const props = schema.properties || {};
  const required = new Set(schema.required || []);
  const fields = [];
  container.replaceChildren();
  for (const name of names || Object.keys(props)) {
    const s = resolve(props[name], schema);
    const field = `${prefix}${name}`;
    const id = `sf-${field.replaceAll(".", "-")}`;
    const kind = kindOf(s);
    const input = control(id, field, s, required.has(name));
    const error = h("p", { class: "error", id: `${id}-err`, "data-error-for": field });
    const desc = s.description ? h("p", { class: "desc", id: `${id}-desc` }, s.description) : null;
    if (kind === "boolean") {
      container.append(h("div", { class: "field check" }, h("label", {}, input, " ", title(name, s)), desc, error));
    } else {
      const hint = kind === "list" ? " (comma separated)" : kind === "json" ? " (JSON)" : "";
      container.append(
        h("div", { class: "field" }, h("label", { for: id }, title(name, s), h("span", { class: "muted" }, hint)), input, desc, error),
      );
    }
    fields.push({ name, field, s, kind, input, required: required.has(name) });
  }
  return function read() {
    const item = {};
    const errors = [];
    for (const { name, field, s, kind, input, required: needed } of fields) {
      const raw = kind === "boolean" ? input.checked : input.value.trim();
      if (kind !== "boolean" && raw === "") {
        if (needed) errors.push({ name: field, message: "Required." });
        continue;
      }
      if (kind === "boolean") {
        if (raw !== (s.default ?? false) || needed) item[name] = raw;
      } else if (kind === "number") {
        const n = Number(raw);
        if (!Number.isFinite(n) || (s.type === "integer" && !Number.isInteger(n))) {
          errors.push({ name: field, message: s.type === "integer" ? "Enter a whole number." : "Enter a number." });
        } else if (s.minimum !== undefined && n < s.minimum) {
          errors.push({ name: field, message: `Must be at least ${s.minimum}.` });
        } else if (s.maximum !== undefined && n > s.maximum) {
          errors.push({ name: field, message: `Must be at most ${s.maximum}.` });
        } else if (n !== s.default || needed) {
          item[name] = n;
        }
      } else if (kind === "enum") {
        const value = s.enum.find((v) => String(v) === raw);
        if (value !== s.default || needed) item[name] = value;
      } else if (kind === "string") {
        if (raw !== s.default || needed) item[name] = raw;
      } else if (kind === "list") {
        const itemType = resolve(s.items || {}, schema).type;
        const parts = raw.split(",").map((x) => x.trim()).filter(Boolean);
        item[name] = itemType === "string" ? parts : parts.map(Number);
      } else {
        try {
          item[name] = JSON.parse(raw);
        } catch {
          errors.push({ name: field, message: "Not valid JSON." });
        }
      }
    }
    return { item, errors };
  };
}
