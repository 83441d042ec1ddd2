"""The catalog of routes behind the AsyncAPI document: complete and pointing at real topics."""

from __future__ import annotations

import pytest

from contracts.catalog import ABSTRACT, ROUTES
from contracts.events import ALL_EVENTS
from contracts.topics import Topics

pytestmark = pytest.mark.unit


def test_every_event_has_a_route_on_an_existing_topic() -> None:
    routed = {route.event for route in ROUTES}
    assert [e.TYPE for e in ALL_EVENTS if e not in routed and e not in ABSTRACT] == []
    topics = Topics().all()
    for route in ROUTES:
        assert getattr(Topics(), route.topic) in topics
        assert route.producers
