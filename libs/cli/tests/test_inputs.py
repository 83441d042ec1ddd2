"""Items files and batch specs: every format, and errors that name the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchyard_cli.errors import InputError
from batchyard_cli.inputs import count_items, load_spec, parse_item, read_items

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("a.jsonl", '{"seconds": 1}\n\n{"seconds": 2}\n'),
        ("a.ndjson", '{"seconds": 1}\n{"seconds": 2}'),
        ("a.json", '[{"seconds": 1}, {"seconds": 2}]'),
        ("a.json", '{"items": [{"seconds": 1}, {"seconds": 2}]}'),
        ("a.yaml", "- seconds: 1\n- seconds: 2\n"),
    ],
)
def test_every_items_format(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    assert list(read_items(str(path))) == [{"seconds": 1}, {"seconds": 2}]
    assert count_items(str(path)) == 2


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.jsonl", '{"seconds": 1}\n{oops\n', "a.jsonl:2: not valid JSON"),
        ("a.jsonl", '{"seconds": 1}\n[1]\n', "a.jsonl:2: an item must be a JSON object"),
        ("a.json", '{"seconds": 1}', "expected a list of items"),
        ("a.json", "[1]", "item 0 is not an object"),
        ("a.yml", "- [unclosed", "not valid YAML"),
    ],
)
def test_bad_items_files_name_the_place(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        list(read_items(str(path)))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        list(read_items(str(tmp_path / "nope.jsonl")))


def test_specs_in_json_and_yaml(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("name: x\njob_type: demo.sleep\nitems:\n  - seconds: 0\n")
    (tmp_path / "s.json").write_text('{"name": "x", "job_type": "demo.sleep"}')
    assert load_spec(tmp_path / "s.yaml")["items"] == [{"seconds": 0}]
    assert load_spec(tmp_path / "s.json")["name"] == "x"
    (tmp_path / "bad.json").write_text('["x"]')
    with pytest.raises(InputError, match="must be an object"):
        load_spec(tmp_path / "bad.json")


def test_parse_item() -> None:
    assert parse_item('{"seconds": 1}', "--item 1") == {"seconds": 1}
    with pytest.raises(InputError, match="--item 2: an item must be a JSON object"):
        parse_item("3", "--item 2")
