"""Moments a person types for `--since`/`--until`: an ISO date or time, or a span back from
now (`90m`, `24h`, `7d`, `2w`); for `--deadline`, a span ahead of now. Times without a zone
are local time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from batchyard_cli.errors import InputError

_SPAN = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_moment(
    text: str, now: datetime | None = None, option: str = "--since", *, ahead: bool = False
) -> str:
    """The moment `text` names, as an ISO 8601 time with its offset (what the API takes). A
    span counts back from now, or forward with `ahead`."""
    value = text.strip()
    span = _SPAN.match(value)
    if span:
        delta = timedelta(**{_UNITS[span.group(2)]: int(span.group(1))})
        moment = (now or datetime.now(UTC)) + (delta if ahead else -delta)
        return moment.isoformat(timespec="seconds")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        direction = "ahead of" if ahead else "back from"
        raise InputError(
            f"{option}: {text!r} is neither an ISO date/time (2026-11-24, 2026-11-24T08:00) "
            f"nor a span {direction} now (90m, 24h, 7d, 2w)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # a local time, as the person meant it
    return moment.isoformat(timespec="seconds")
