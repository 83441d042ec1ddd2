"""Write the JSON Schema of the envelope and of every event into a folder (default
`docs/events/`), one file per event and version: `<Type>.v<version>.json`.

    python -m contracts.export [--out docs/events] [--check]

`--check` writes nothing and exits 1 if a committed schema differs from the code, which means
an event changed without a version bump (or the export was not re-run)."""

from __future__ import annotations

import argparse
import json
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
        problems = check(args.out)
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
