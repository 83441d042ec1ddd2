"""How large what a batch carries may be, so that every message it becomes fits in Kafka.

Kafka refuses a message over 1 MiB by default (the broker's `message.max.bytes`, the
producer's `max_request_size`). A batch's items travel in `BatchItemsAdded` chunks, and each
item again in its job's `JobDispatched`, with the batch's `config.params`; the batch's
config travels in `BatchCreated`. So an item and the params are each held to a quarter of
that, and a chunk to half of it: an item alone always fits in a chunk, and a dispatch
(item + params + its envelope) stays under the limit. What is larger is refused with a 422
before anything is stored."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate
from typing import Any

import orjson

MAX_ITEM_BYTES = 256 * 1024
MAX_PARAMS_BYTES = 256 * 1024
CHUNK_MAX_BYTES = 512 * 1024
CHUNK_MAX_ITEMS = 1000


def json_size(value: Any) -> int:
    """Bytes of `value` as compact JSON (about what it takes in an event). A ValueError if it
    cannot be JSON: text with a lone surrogate (`"\\ud800"` parses, but is no Unicode that
    could be stored or sent), or an integer beyond 64 bits."""
    try:
        return len(orjson.dumps(value))
    except orjson.JSONEncodeError as exc:
        raise ValueError(f"cannot be stored as JSON: {exc}") from None


def chunk_sizes(items: Sequence[Any]) -> list[int]:
    """How many items each chunk of `items` holds, in order: at most `CHUNK_MAX_ITEMS`, and
    at most `CHUNK_MAX_BYTES` of JSON unless one item alone is larger."""
    sizes: list[int] = []
    count = size = 0
    for item in items:
        n = json_size(item)
        if count and (count == CHUNK_MAX_ITEMS or size + n > CHUNK_MAX_BYTES):
            sizes.append(count)
            count = size = 0
        count += 1
        size += n
    if count:
        sizes.append(count)
    return sizes


def chunk_offsets(sizes: Sequence[int]) -> list[int]:
    """Where each chunk of `sizes` starts among the items: 0, then the sizes summed."""
    return list(accumulate(sizes[:-1], initial=0)) if sizes else []


def params_fit(params: dict[str, Any]) -> dict[str, Any]:
    """`params` if they fit (`MAX_PARAMS_BYTES`); a ValueError saying why otherwise."""
    try:
        size = json_size(params)
    except ValueError as exc:
        raise ValueError(f"params {exc}") from None
    if size > MAX_PARAMS_BYTES:
        raise ValueError(
            f"params are {size:,} bytes as JSON, more than the {MAX_PARAMS_BYTES:,} allowed "
            "(every job is sent with them); pass large data as items or uploaded files"
        )
    return params
