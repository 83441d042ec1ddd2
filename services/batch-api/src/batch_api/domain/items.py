"""Items of a draft as the API names and filters them. An item's id is `<chunk>-<offset>`:
its place in the upload chunk that holds it, stable while the batch is a draft (removing an
item leaves a tombstone, so no other item moves until submission compacts the chunks)."""

from __future__ import annotations

import re
from typing import Any

_ITEM_ID = re.compile(r"^(\d{1,9})-(\d{1,6})$")
_MISSING = object()


def item_id(chunk: int, offset: int) -> str:
    return f"{chunk}-{offset}"


def parse_item_id(text: str) -> tuple[int, int] | None:
    """(chunk, offset) of an item id; None if it is not one."""
    found = _ITEM_ID.match(text)
    if found is None:
        return None
    return int(found.group(1)), int(found.group(2))


def matches(item: dict[str, Any], match: dict[str, Any]) -> bool:
    """Whether every key of `match` has an equal value in `item`; a dotted key (`a.b`)
    reaches into nested objects. A key the item lacks does not match (not even `null`)."""
    for key, wanted in match.items():
        value: Any = item
        for part in key.split("."):
            value = value.get(part, _MISSING) if isinstance(value, dict) else _MISSING
            if value is _MISSING:
                return False
        if value != wanted or isinstance(value, bool) != isinstance(wanted, bool):
            return False
    return True
