"""The create body: a spec overridden by flags, priorities, params; the files of
`upload --files` and their grouping into requests."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchyard_cli.creation import (
    BatchOptions,
    batch_body,
    expand_files,
    file_chunks,
    parse_param,
    parse_priority,
)
from batchyard_cli.errors import InputError

pytestmark = pytest.mark.unit

SPEC = {
    "name": "from spec",
    "job_type": "demo.sleep",
    "priority": "low",
    "items": [{"seconds": 1}],
    "config": {"max_concurrent_jobs": 2, "retry": {"max_attempts": 5, "multiplier": 3}},
}


def test_flags_override_the_spec_field_by_field() -> None:
    body = batch_body(
        SPEC,
        BatchOptions(
            name="from flags",
            priority="9",
            tags=["a", "b"],
            max_concurrent_jobs=8,
            execution="sequential",
            max_attempts=2,
            stop_on_error=True,
            params=["n=3", "mode=fast"],
            items=[{"seconds": 2}],
        ),
    )
    assert body == {
        "name": "from flags",
        "job_type": "demo.sleep",
        "priority": 9,
        "tags": ["a", "b"],
        "items": [{"seconds": 1}, {"seconds": 2}],
        "config": {
            "max_concurrent_jobs": 8,
            "execution": "sequential",
            "retry": {"max_attempts": 2, "multiplier": 3},
            "stop_on_error": True,
            "params": {"n": 3, "mode": "fast"},
        },
    }


def test_a_deadline_and_what_to_do_when_it_is_missed() -> None:
    body = batch_body(
        SPEC,
        BatchOptions(deadline="2026-12-01T08:00:00+00:00", on_deadline_missed="cancel"),
    )
    assert body["deadline"] == "2026-12-01T08:00:00+00:00"
    assert body["config"]["on_deadline_missed"] == "cancel"
    assert body["config"]["max_concurrent_jobs"] == 2  # the spec's config stays


def test_the_spec_alone_is_sent_as_written() -> None:
    assert batch_body(SPEC, BatchOptions()) == SPEC


def test_a_batch_needs_a_name_and_a_job_type() -> None:
    with pytest.raises(InputError, match="--name and --job-type"):
        batch_body({}, BatchOptions())
    assert "items" not in batch_body({}, BatchOptions(name="n", job_type="t"))


@pytest.mark.parametrize(("text", "value"), [("low", "low"), ("critical", "critical"), ("10", 10)])
def test_priorities(text: str, value: str | int) -> None:
    assert parse_priority(text) == value


@pytest.mark.parametrize("text", ["urgent", "0", "11", ""])
def test_bad_priorities(text: str) -> None:
    with pytest.raises(InputError, match="priority must be one of"):
        parse_priority(text)


def test_params() -> None:
    assert parse_param("a=[1, 2]") == ("a", [1, 2])
    assert parse_param("b=x=y") == ("b", "x=y")
    with pytest.raises(InputError):
        parse_param("novalue")


def test_files_are_grouped_by_count_and_bytes(tmp_path: Path) -> None:
    sizes = [10, 10, 10, 50, 10, 200, 10]
    paths = []
    for i, size in enumerate(sizes):
        path = tmp_path / f"f{i}"
        path.write_bytes(b"x" * size)
        paths.append(path)
    groups = [[p.name for p in g] for g in file_chunks(paths, per_request=3, max_bytes=70)]
    # 3 files at most; at most 70 bytes unless one file alone is larger
    assert groups == [["f0", "f1", "f2"], ["f3", "f4"], ["f5"], ["f6"]]


def test_directories_expand_to_their_files_without_hidden_ones(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / ".git").mkdir()
    for name in ("d/b.txt", "d/a.txt", "d/sub/c.bin", "d/.hidden", "d/.git/config", "top.md"):
        (tmp_path / name).write_text(name)
    found = expand_files([str(tmp_path / "top.md"), str(tmp_path / "d")])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "top.md",
        "d/a.txt",
        "d/b.txt",
        "d/sub/c.bin",
    ]
    with pytest.raises(InputError, match="no such file"):
        expand_files([str(tmp_path / "missing")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no files"):
        expand_files([str(tmp_path / "empty")])
