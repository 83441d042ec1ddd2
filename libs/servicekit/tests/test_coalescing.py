"""CoalescingPublisher: what is handed over in one turn of the event loop goes out in one
publish, and every caller learns how that publish went."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from contracts.codec import envelope_for
from contracts.events import BatchSubmitted
from servicekit.publisher import CoalescingPublisher, Outgoing

pytestmark = pytest.mark.unit


def _message(key: str) -> Outgoing:
    event = BatchSubmitted(batch_id=key, total_items=1, chunks=1)
    return Outgoing("t", key, envelope_for(event, producer="test"))


class _Inner:
    def __init__(self, fail: BaseException | None = None, delay: float = 0.0) -> None:
        self.calls: list[list[str]] = []
        self.fail = fail
        self.delay = delay

    async def publish(self, messages: Sequence[Outgoing]) -> None:
        self.calls.append([m.key for m in messages])
        await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail


async def test_messages_of_one_turn_go_out_in_one_publish_in_the_order_handed_over() -> None:
    inner = _Inner()
    publisher = CoalescingPublisher(inner)

    await asyncio.gather(
        publisher.publish([_message("a"), _message("b")]),
        publisher.publish([_message("c")]),
        publisher.publish([]),
    )
    await publisher.publish([_message("d")])

    assert inner.calls == [["a", "b", "c"], ["d"]]


async def test_every_caller_of_a_failed_publish_raises_its_error() -> None:
    publisher = CoalescingPublisher(_Inner(fail=RuntimeError("broker said no")))

    results = await asyncio.gather(
        publisher.publish([_message("a")]),
        publisher.publish([_message("b")]),
        return_exceptions=True,
    )

    assert [str(r) for r in results] == ["broker said no", "broker said no"]


async def test_a_cancelled_caller_does_not_stop_the_others_messages() -> None:
    inner = _Inner(delay=0.05)
    publisher = CoalescingPublisher(inner)
    first = asyncio.ensure_future(publisher.publish([_message("a")]))
    second = asyncio.ensure_future(publisher.publish([_message("b")]))
    await asyncio.sleep(0.01)  # both handed over, the publish under way

    first.cancel()
    await second

    assert first.cancelled()
    assert inner.calls == [["a", "b"]]
