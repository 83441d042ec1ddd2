"""Item ids and the equality filter of draft editing."""

from __future__ import annotations

import pytest

from batch_api.adapters.registry import live_items
from batch_api.domain.items import item_id, matches, parse_item_id

pytestmark = pytest.mark.unit


def test_item_ids_round_trip_and_reject_anything_else() -> None:
    assert parse_item_id(item_id(3, 999)) == (3, 999)
    for bad in ("", "3", "3-", "-1-2", "a-1", "1-2-3", "1 -2", "1-1234567"):
        assert parse_item_id(bad) is None


def test_match_compares_values_of_top_level_and_dotted_keys() -> None:
    item = {"customer": "acme", "n": 1, "flag": True, "meta": {"region": "eu"}, "none": None}
    assert matches(item, {"customer": "acme"})
    assert matches(item, {"customer": "acme", "meta.region": "eu"})
    assert matches(item, {"n": 1.0})
    assert matches(item, {"none": None})
    assert not matches(item, {"customer": "acme", "n": 2})
    assert not matches(item, {"missing": None})
    assert not matches(item, {"meta.region.deeper": "eu"})
    assert not matches(item, {"n": True})
    assert not matches(item, {"flag": 1})


def test_live_items_skip_tombstones_and_keep_offsets() -> None:
    chunk = {"items": [{"i": 0}, {"i": 1}, {"i": 2}], "removed": [1]}
    assert live_items(chunk) == [(0, {"i": 0}), (2, {"i": 2})]
    assert live_items({"items": []}) == []
