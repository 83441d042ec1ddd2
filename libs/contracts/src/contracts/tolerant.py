"""Reading what a newer Batchyard wrote: unknown fields are ignored at every depth.

The shared models (`BatchConfig`, `RetryPolicy`, `Webhook`, `ResourceLimits`, ...) forbid
unknown fields so that the API refuses a typo with a 422. What was already accepted, an event
on the wire or a document in the store, may come from a newer version during a rolling
upgrade (or an older one after a rollback of the upgrade) with a field added anywhere, since
the contracts only ever add optional fields. Such data is read with `validate_tolerantly`:
refusing it would dead-letter the event, or fail every read of the batch."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def validate_tolerantly(cls: type[M], data: Any) -> M:
    """`cls` from `data`, ignoring fields it does not know at any depth. Raises the
    `ValidationError` of anything else wrong (a missing field, a value of the wrong type)."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        unknown = [e["loc"] for e in exc.errors() if e["type"] == "extra_forbidden"]
        if not unknown:
            raise
    return cls.model_validate(_without(data, unknown))  # raises what else is wrong, if any


def _without(data: Any, locations: list[tuple[int | str, ...]]) -> Any:
    """A copy of `data` without the values at `locations` (the objects and lists on the way
    copied, the rest shared)."""
    here = {loc[0] for loc in locations if len(loc) == 1}
    deeper: dict[int | str, list[tuple[int | str, ...]]] = {}
    for loc in locations:
        if len(loc) > 1:
            deeper.setdefault(loc[0], []).append(loc[1:])
    if isinstance(data, dict):
        return {
            k: _without(v, deeper[k]) if k in deeper else v
            for k, v in data.items()
            if k not in here
        }
    if isinstance(data, list):
        return [_without(v, deeper[i]) if i in deeper else v for i, v in enumerate(data)]
    return data
