"""Chunks of a batch's items by count and by size (batch_api.limits)."""

from __future__ import annotations

import pytest

from batch_api.limits import (
    CHUNK_MAX_BYTES,
    CHUNK_MAX_ITEMS,
    chunk_offsets,
    chunk_sizes,
    json_size,
    params_fit,
)

pytestmark = pytest.mark.unit


def test_small_items_are_chunked_by_count() -> None:
    assert chunk_sizes([{}] * 2500) == [CHUNK_MAX_ITEMS, CHUNK_MAX_ITEMS, 500]
    assert chunk_sizes([]) == []


def test_large_items_are_chunked_by_size_and_keep_their_order() -> None:
    items = [{"n": i, "pad": "x" * 2000} for i in range(1000)]
    sizes = chunk_sizes(items)
    assert sum(sizes) == 1000
    starts = chunk_offsets(sizes)
    for start, size in zip(starts, sizes, strict=True):
        assert json_size(items[start : start + size]) <= CHUNK_MAX_BYTES
    assert len(sizes) == 4  # ~2 MB of items in chunks of at most 512 KiB


def test_an_item_larger_than_a_chunk_still_gets_one_of_its_own() -> None:
    big = {"pad": "x" * (CHUNK_MAX_BYTES + 1)}
    assert chunk_sizes([{}, big, {}]) == [1, 1, 1]


def test_params_over_the_limit_say_so() -> None:
    assert params_fit({"a": 1}) == {"a": 1}
    with pytest.raises(ValueError, match="params are 3"):
        params_fit({"blob": "y" * 300_000})


def test_offsets_of_chunks() -> None:
    assert chunk_offsets([1000, 400, 7]) == [0, 1000, 1400]
    assert chunk_offsets([]) == []  # a draft made without items has no chunk
