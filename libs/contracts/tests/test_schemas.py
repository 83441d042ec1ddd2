"""The published JSON Schemas match the code, and old consumers can read new events."""

from __future__ import annotations

import json
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import jsonschema
import pytest
from pydantic import BaseModel

from contracts import decode, encode, envelope_for
from contracts.codec import PoisonMessage
from contracts.events import ALL_EVENTS, EVENTS_BY_TYPE, Event
from contracts.export import check, render, schemas

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
