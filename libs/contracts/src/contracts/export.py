"""Write the JSON Schema of the envelope and of every event into a folder (default
`docs/events/`), one file per event and version: `<Type>.v<version>.json`.

    python -m contracts.export [--out docs/events] [--check]

`--check` writes nothing and exits 1 if a committed schema differs from the code, which means
an event changed without a version bump (or the export was not re-run), or if an event
version's schema is not what it was when first committed with optional fields added
(`compatibility`, read from git: re-running the export after changing a published version
does not hide the change), or if a version is not its predecessor with optional fields added."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from contracts.envelope import Envelope
from contracts.events import ALL_EVENTS


def schemas() -> dict[str, dict[str, Any]]:
    """File name → JSON Schema, for the envelope and every event."""
    out: dict[str, dict[str, Any]] = {"Envelope.v1.json": Envelope.model_json_schema()}
    for cls in ALL_EVENTS:
        schema = allowing_unknown_fields(cls.model_json_schema())
        schema["x-event-type"] = cls.TYPE
        schema["x-schema-version"] = cls.VERSION
        out[f"{cls.TYPE}.v{cls.VERSION}.json"] = schema
    return out


def allowing_unknown_fields(schema: Any) -> Any:
    """A schema, or a document holding schemas, without `additionalProperties: false`. The
    nested models forbid unknown fields so that the API refuses typos, but consumers ignore
    them on the wire at every depth (`contracts.tolerant`): a producer may add an
    optional field anywhere."""
    return _pruned(schema, lambda key, value: key == "additionalProperties" and value is False)


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def check(folder: Path) -> list[str]:
    """Problems found comparing the code's schemas with the committed ones."""
    problems = []
    for name, schema in schemas().items():
        path = folder / name
        if not path.exists():
            problems.append(f"{name}: missing; run `python -m contracts.export`")
        elif path.read_text() != render(schema):
            if _wire(json.loads(path.read_text())) == _wire(schema):
                problems.append(
                    f"{name}: only descriptions changed; run `python -m contracts.export` "
                    "(the version stays)"
                )
            else:
                problems.append(
                    f"{name}: the event's schema changed but its VERSION did not; bump VERSION "
                    "(and keep the change additive), then run `python -m contracts.export`"
                )
    return problems


def compatibility(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """How `new` breaks readers or writers of `old` (empty: it does not). The one change a
    published event version may take is an optional field, at any depth (old consumers
    ignore it; old producers' messages still validate), or dropping a ban on unknown fields.
    A field removed, made required or no longer required, or a type, format or enum changed
    is a new version. Descriptions, titles, defaults and examples do not count."""
    found: list[str] = []
    old, new = _wire(old), _wire(new)

    def resolve(schema: Any, root: dict[str, Any]) -> Any:
        while isinstance(schema, dict) and "$ref" in schema:
            schema = root.get("$defs", {}).get(schema["$ref"].rsplit("/", 1)[1], {})
        return schema

    def walk(a: Any, b: Any, path: str, seen: frozenset[tuple[int, int]]) -> None:
        a, b = resolve(a, old), resolve(b, new)
        if (id(a), id(b)) in seen:  # a recursive model
            return
        seen |= {(id(a), id(b))}
        if isinstance(a, dict) and isinstance(b, dict):
            if "properties" in a or "properties" in b:
                a_props, b_props = a.get("properties", {}), b.get("properties", {})
                a_req, b_req = set(a.get("required", [])), set(b.get("required", []))
                found.extend(
                    f"{path}.{k}: removed" for k in sorted(a_props.keys() - b_props.keys())
                )
                found.extend(
                    f"{path}.{k}: added as a required field"
                    for k in sorted((b_props.keys() - a_props.keys()) & b_req)
                )
                found.extend(f"{path}.{k}: no longer required" for k in sorted(a_req - b_req))
                found.extend(
                    f"{path}.{k}: now required" for k in sorted((b_req - a_req) & a_props.keys())
                )
                for k in sorted(a_props.keys() & b_props.keys()):
                    walk(a_props[k], b_props[k], f"{path}.{k}", seen)
                skip = {"properties", "required"}
            else:
                skip = set()
            if a.get("additionalProperties") is False and "additionalProperties" not in b:
                skip.add("additionalProperties")  # more tolerant than before
            keys = {k for k in a.keys() | b.keys() if not k.startswith("x-")}  # our annotations
            for k in sorted(keys - skip - _NOT_WIRE):
                if k not in a or k not in b:
                    found.append(f"{path or '.'}: `{k}` {'added' if k in b else 'removed'}")
                else:
                    walk(a[k], b[k], f"{path}/{k}", seen)
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for n, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(x, y, f"{path}[{n}]", seen)
        elif a != b:
            found.append(f"{path or '.'}: {json.dumps(a)[:80]} became {json.dumps(b)[:80]}")

    walk(old, new, "", frozenset())
    return found


_NOT_WIRE = {"$defs", "title", "default", "examples"}


def version_problems(folder: Path) -> list[str]:
    """Each version of an event in `folder` against the one before it: a later version too may
    only add optional fields (docs/events/README.md, rule 3)."""
    problems = []
    for path in sorted(folder.glob("*.v*.json")):
        kind, _, version = path.name.removesuffix(".json").rpartition(".v")
        before = folder / f"{kind}.v{int(version) - 1}.json"
        if before.exists():
            breaks = compatibility(json.loads(before.read_text()), json.loads(path.read_text()))
            if breaks:
                problems.append(
                    f"{path.name}: not a superset of {before.name}: {'; '.join(breaks[:5])}; "
                    "a subscriber reads a higher version with the model it has"
                )
    return problems


def published(folder: Path) -> dict[str, str]:
    """Each schema file of `folder` that git knows → the text it was first committed with;
    empty when `folder` is not in a git work tree with history."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, check=True
        ).stdout

    try:
        listing = git("log", "--diff-filter=A", "--format=%H", "--name-only", "--", ".")
        prefix = git("rev-parse", "--show-prefix").strip()
    except (OSError, subprocess.CalledProcessError):
        return {}
    first: dict[str, str] = {}  # file name → the commit that added it
    commit = ""
    for line in listing.splitlines():
        if len(line) == 40 and all(c in "0123456789abcdef" for c in line):
            commit = line
        elif line.startswith(prefix) and line.endswith(".json"):
            first[line[len(prefix) :]] = commit  # newest first: the last one seen is the first
    out = {}
    for name, commit in first.items():
        try:
            out[name] = git("show", f"{commit}:{prefix}{name}")
        except subprocess.CalledProcessError:
            continue
    return out


def history_problems(folder: Path) -> list[str]:
    """Every schema against the text it was first committed with: the code's for the current
    versions, the folder's for older ones (no longer generated, so edited only by hand)."""
    before = published(folder)
    current = schemas()
    problems = []
    for name, text in sorted(before.items()):
        if name in current:
            schema = current[name]
        elif (folder / name).exists():
            schema = json.loads((folder / name).read_text())
        else:
            continue  # removed: `check` says so for a current version
        breaks = compatibility(json.loads(text), schema)
        if breaks:
            problems.append(
                f"{name}: changed since it was first committed in a way its readers or "
                f"writers may not take: {'; '.join(breaks[:5])}; make a new VERSION instead"
            )
    return problems


def _wire(schema: Any) -> Any:
    """The schema without its descriptions (text, unlike a property named `description`,
    whose schema is an object): what a message must look like."""
    return _pruned(schema, lambda key, value: key == "description" and isinstance(value, str))


def _pruned(schema: Any, drop: Callable[[str, Any], bool]) -> Any:
    """`schema` without the keys, at any depth, for which `drop(key, value)` holds."""
    if isinstance(schema, dict):
        return {k: _pruned(v, drop) for k, v in schema.items() if not drop(k, v)}
    if isinstance(schema, list):
        return [_pruned(v, drop) for v in schema]
    return schema


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m contracts.export")
    parser.add_argument("--out", type=Path, default=Path("docs/events"))
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    if args.check:
        problems = check(args.out) + history_problems(args.out) + version_problems(args.out)
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, schema in schemas().items():
        (args.out / name).write_text(render(schema))
    print(f"wrote {len(schemas())} schemas to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
