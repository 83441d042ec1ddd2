"""Reading what a person gives the CLI: a batch spec (JSON or YAML) and items files.

Items files: JSON lines (`.jsonl`, `.ndjson`, or `-` for standard input: one object per line,
blank lines skipped), a JSON array or `{"items": [...]}` (`.json`), or a YAML list (`.yaml`,
`.yml`). Every item must be an object. Errors name the file and line."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from batchyard_cli.errors import InputError

STDIN = "-"
YAML_SUFFIXES = (".yaml", ".yml")


def load_spec(
    path: Path, kind: str = "a batch spec", fields: str = "name, job_type"
) -> dict[str, Any]:
    """A spec as a JSON or YAML object: by default a batch spec (the fields of
    `POST /v1/batches`); `kind` and `fields` name what else it is for error messages."""
    text = _read(path)
    try:
        data = yaml.safe_load(text) if path.suffix in YAML_SUFFIXES else json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: {kind} must be an object with {fields}, ...")
    return data


def read_items(source: str) -> Iterator[dict[str, Any]]:
    """The items in `source` (a path or `-`), lazily for JSON lines."""
    if source == STDIN:
        yield from _json_lines(sys.stdin, "<stdin>")
        return
    path = Path(source)
    if path.suffix == ".json":
        yield from _listed(json_document(path), path)
    elif path.suffix in YAML_SUFFIXES:
        yield from _listed(_yaml_document(path), path)
    else:
        try:
            with path.open(encoding="utf-8") as lines:
                yield from _json_lines(lines, str(path))
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror}") from None


def count_items(source: str) -> int | None:
    """How many items `source` holds, when that is cheap to know (None for stdin)."""
    if source == STDIN:
        return None
    path = Path(source)
    if path.suffix == ".json" or path.suffix in YAML_SUFFIXES:
        return sum(1 for _ in read_items(source))
    try:
        with path.open("rb") as data:
            return sum(1 for line in data if line.strip())
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None


def parse_item(text: str, where: str) -> dict[str, Any]:
    """One item given on the command line as a JSON object."""
    try:
        item = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not valid JSON: {exc.msg}: {text[:80]}") from None
    if not isinstance(item, dict):
        raise InputError(f"{where}: an item must be a JSON object, got {text[:80]}")
    return item


def json_document(path: Path) -> Any:
    try:
        return json.loads(_read(path))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None


def _yaml_document(path: Path) -> Any:
    try:
        return yaml.safe_load(_read(path))
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from None


def _listed(document: Any, path: Path) -> Iterator[dict[str, Any]]:
    items = document.get("items") if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise InputError(f"{path}: expected a list of items (or an object with `items`)")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise InputError(f"{path}: item {index} is not an object")
        yield item


def _json_lines(lines: Any, name: str) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{name}:{number}: not valid JSON: {exc.msg}") from None
        if not isinstance(item, dict):
            raise InputError(f"{name}:{number}: an item must be a JSON object")
        yield item


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
