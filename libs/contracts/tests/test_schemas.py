"""The published JSON Schemas match the code, and old consumers can read new events."""

from __future__ import annotations

import json
import subprocess
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import jsonschema
import pytest
from pydantic import BaseModel, ConfigDict, create_model

from contracts import decode, encode, envelope_for
from contracts.codec import PoisonMessage
from contracts.events import ALL_EVENTS, EVENTS_BY_TYPE, Event
from contracts.export import (
    check,
    compatibility,
    history_problems,
    published,
    render,
    schemas,
    version_problems,
)

pytestmark = pytest.mark.unit

DOCS = Path(__file__).resolve().parents[3] / "docs" / "events"


def sample(cls: type[BaseModel]) -> dict[str, Any]:
    """A valid instance's data: every required field filled by its type."""
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for name, field in cls.model_fields.items():
        if not field.is_required():
            continue
        out[name] = _value(hints[name])
    return out


def _value(tp: Any) -> Any:
    origin = get_origin(tp)
    if origin is Literal:
        return get_args(tp)[0]
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return _value(next(a for a in get_args(tp) if a is not type(None)))
    if origin is list and get_args(tp):
        return [_value(get_args(tp)[0])]  # one item: some lists may not be empty
    if origin in (list, tuple):
        return []
    if origin is dict:
        return {}
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return sample(tp)
    return {str: "x", int: 1, float: 1.0, bool: False, datetime: datetime.now(UTC)}[tp]


def test_committed_schemas_match_the_code() -> None:
    assert check(DOCS) == [], "run `python -m contracts.export` and bump VERSION on changes"


def test_a_changed_schema_without_a_version_bump_is_reported(tmp_path: Path) -> None:
    for name, schema in schemas().items():
        (tmp_path / name).write_text(render(schema))
    victim = tmp_path / "JobStarted.v1.json"
    changed = json.loads(victim.read_text())
    changed["properties"]["new_field"] = {"type": "string"}
    victim.write_text(render(changed))
    problems = check(tmp_path)
    assert len(problems) == 1
    assert "JobStarted.v1.json" in problems[0]
    assert "bump VERSION" in problems[0]


class _Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: int


class _Published(BaseModel):
    """The event as first published."""

    kind: Literal["a", "b"]
    inner: _Inner
    note: str | None = None


def _changed(**fields: Any) -> dict[str, Any]:
    """The schema of `_Published` with fields replaced, added (`name=(type, default)`) or
    removed (`name=None`); nested models forbid unknown fields, like the contracts' own."""
    base: dict[str, Any] = {"kind": (Literal["a", "b"], ...), "inner": (_Inner, ...),
                            "note": (str | None, None)}  # fmt: skip
    for name, spec in fields.items():
        if spec is None:
            base.pop(name)
        else:
            base[name] = spec
    return create_model("_Published", **base).model_json_schema()


def test_a_published_version_may_only_gain_optional_fields() -> None:
    old = _Published.model_json_schema()
    assert compatibility(old, old) == []
    assert compatibility(old, _changed(extra=(int | None, None))) == []
    roomier = create_model("_Inner", size=(int, ...), unit=(str, "px"))
    assert compatibility(old, _changed(inner=(roomier, ...))) == []  # at any depth
    tolerant = json.loads(json.dumps(old))
    del tolerant["$defs"]["_Inner"]["additionalProperties"]
    assert compatibility(old, tolerant) == []  # unknown fields no longer refused
    described = json.loads(json.dumps(old))
    described["properties"]["note"]["description"] = "Worded anew."
    described["$defs"]["_Inner"]["properties"]["size"]["description"] = "In pixels."
    described["x-schema-version"] = 2
    assert compatibility(old, described) == []


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"note": None}, ".note: removed"),
        ({"extra": (int, ...)}, ".extra: added as a required field"),
        ({"note": (str, ...)}, ".note: now required"),
        ({"kind": (Literal["a", "b"], "a")}, ".kind: no longer required"),
        ({"kind": (Literal["a", "b", "c"], ...)}, ".kind"),  # an old reader refuses "c"
        ({"inner": (create_model("_Inner", size=(str, ...)), ...)}, ".inner.size"),
    ],
)
def test_a_change_that_breaks_readers_or_writers_is_named(
    change: dict[str, Any], said: str
) -> None:
    breaks = compatibility(_Published.model_json_schema(), _changed(**change))
    assert breaks
    assert any(b.startswith(said) for b in breaks), breaks


def test_every_event_version_is_compatible_with_what_was_first_committed() -> None:
    first = published(DOCS)
    assert len(first) >= len(schemas()) - 5, "this test reads the schemas' git history"
    assert history_problems(DOCS) == []


def test_an_older_version_edited_after_it_was_committed_is_reported(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=tmp_path, check=True, capture_output=True,
        )  # fmt: skip

    git("init", "-q")
    (tmp_path / "Thing.v1.json").write_text(render(_Published.model_json_schema()))
    git("add", ".")
    git("commit", "-q", "-m", "v1")
    assert history_problems(tmp_path) == []
    (tmp_path / "Thing.v1.json").write_text(render(_changed(note=None)))  # by hand
    (problem,) = history_problems(tmp_path)
    assert problem.startswith("Thing.v1.json: changed since it was first committed")
    assert ".note: removed" in problem


def test_every_version_keeps_what_the_one_before_had() -> None:
    assert version_problems(DOCS) == []


def test_a_version_that_drops_a_field_of_the_one_before_is_reported(tmp_path: Path) -> None:
    (tmp_path / "Thing.v1.json").write_text(render(_Published.model_json_schema()))
    (tmp_path / "Thing.v2.json").write_text(render(_changed(note=None, extra=(int | None, None))))
    (problem,) = version_problems(tmp_path)
    assert problem.startswith("Thing.v2.json: not a superset of Thing.v1.json: .note: removed")


def test_changed_descriptions_are_reported_as_such(tmp_path: Path) -> None:
    for name, schema in schemas().items():
        (tmp_path / name).write_text(render(schema))
    victim = tmp_path / "BatchSubmitted.v1.json"
    changed = json.loads(victim.read_text())
    changed["description"] = "Worded differently."
    victim.write_text(render(changed))
    (problem,) = check(tmp_path)
    assert "only descriptions changed" in problem
    assert "bump VERSION" not in problem


def test_every_event_type_is_unique_and_registered() -> None:
    assert len(EVENTS_BY_TYPE) == len(ALL_EVENTS)


@pytest.mark.parametrize("cls", ALL_EVENTS, ids=lambda c: c.TYPE)
def test_round_trip_through_the_wire(cls: type[Event]) -> None:
    event = cls.model_validate(sample(cls))
    raw = encode(envelope_for(event, producer="test"))
    envelope, decoded = decode(raw)
    assert envelope.type == cls.TYPE
    assert envelope.schema_version == cls.VERSION
    assert decoded == event


@pytest.mark.parametrize("cls", ALL_EVENTS, ids=lambda c: c.TYPE)
def test_old_consumer_reads_a_newer_event(cls: type[Event]) -> None:
    """A newer producer adds an optional field: the committed schema still accepts the data
    and today's model ignores the field."""
    data = {**cls.model_validate(sample(cls)).body(), "added_in_a_later_version": {"x": 1}}
    schema = json.loads((DOCS / f"{cls.TYPE}.v{cls.VERSION}.json").read_text())
    jsonschema.validate(json.loads(json.dumps(data, default=str)), schema)
    parsed = cls.model_validate(data)
    assert not hasattr(parsed, "added_in_a_later_version")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "not JSON"),
        (b'{"type": "X"}', "not an envelope"),
        (
            b'{"type": "Nope", "schema_version": 1, "producer": "p", "data": {}}',
            "unknown event type",
        ),
        (
            b'{"type": "JobStarted", "schema_version": 1, "producer": "p", "data": {"job_id": 1}}',
            "invalid JobStarted",
        ),
    ],
)
def test_poison_messages_are_named_not_raised_raw(raw: bytes, reason: str) -> None:
    with pytest.raises(PoisonMessage) as info:
        decode(raw)
    assert reason in info.value.reason


def _with_field_added(body: dict[str, Any], path: tuple[str | int, ...]) -> dict[str, Any]:
    """`body` (copied) with `added_in_a_later_version` in the object at `path`."""
    out = json.loads(json.dumps(body, default=str))
    target = out
    for step in path:
        target = target[step]
    target["added_in_a_later_version"] = 1
    return out


NESTED_OBJECTS: list[tuple[type[Event], tuple[str | int, ...]]] = [
    (EVENTS_BY_TYPE["BatchCreated"], ("config",)),
    (EVENTS_BY_TYPE["BatchCreated"], ("config", "retry")),
    (EVENTS_BY_TYPE["BatchCreated"], ("config", "resource_limits")),
    (EVENTS_BY_TYPE["BatchCreated"], ("config", "stagger")),
    (EVENTS_BY_TYPE["BatchCreated"], ("config", "depends_on")),
    (EVENTS_BY_TYPE["BatchCreated"], ("config", "notifications", 1)),
    (EVENTS_BY_TYPE["JobDispatched"], ("resource_limits",)),
]


def _rich_body(cls: type[Event]) -> dict[str, Any]:
    """A sample body whose optional nested objects are all present."""
    data = sample(cls)
    if cls.TYPE == "BatchCreated":
        data["config"] = {
            "retry": {"max_attempts": 2},
            "resource_limits": {"timeout_s": 5},
            "stagger": {"start_interval_ms": 10},
            "depends_on": {"batches": ["b_other"]},
            "notifications": [
                {"url": "https://example.test/a"},
                {"url": "https://example.test/b", "on_start": True},
            ],
        }
    if cls.TYPE == "JobDispatched":
        data["resource_limits"] = {"max_cpu_s": 3}
    return cls.model_validate(data).body()


@pytest.mark.parametrize(("cls", "path"), NESTED_OBJECTS, ids=lambda v: str(v))
def test_old_consumer_reads_a_field_added_inside_a_nested_object(
    cls: type[Event], path: tuple[str | int, ...]
) -> None:
    """A newer producer (a rolling upgrade: batch-api before the scheduler, the scheduler
    before the executors) adds an optional field to a nested object, e.g. `config`: the
    published schema allows it, and every consumer still takes the event, without the field,
    instead of dead-lettering it (which would lose the batch or the job)."""
    body = _rich_body(cls)
    newer = _with_field_added(body, path)
    schema = json.loads((DOCS / f"{cls.TYPE}.v{cls.VERSION}.json").read_text())
    jsonschema.validate(newer, schema)
    raw = encode(envelope_for(cls.model_validate(body), producer="test")).replace(
        json.dumps(body, separators=(",", ":"), default=str).encode(),
        json.dumps(newer, separators=(",", ":")).encode(),
    )
    assert b"added_in_a_later_version" in raw
    _, decoded = decode(raw)
    assert decoded == cls.model_validate(body)


def test_a_wrong_value_beside_an_unknown_field_is_still_poison() -> None:
    """Only unknown fields are forgiven: a nested value of the wrong type still names itself."""
    cls = EVENTS_BY_TYPE["BatchCreated"]
    body = _with_field_added(_rich_body(cls), ("config",))
    body["config"]["retry"]["max_attempts"] = "many"
    envelope = envelope_for(cls.model_validate(_rich_body(cls)), producer="test")
    raw = encode(envelope.model_copy(update={"data": body}))
    with pytest.raises(PoisonMessage) as info:
        decode(raw)
    assert "config.retry.max_attempts" in info.value.reason
