"""Weighted fair sharing of dispatch slots between batches (stride scheduling).

Each batch has a virtual `pass`; the batch with the smallest pass gets the next slot and its
pass advances by `STRIDE / weight`. Over time each batch's share is its weight over the sum of
weights of the batches that want slots, and no batch with a weight starves. A batch that
joins (or returns from idle) starts at the current minimum pass, so it cannot claim slots for
the time it was away. Weights grow with waiting (aging), so a low batch also speeds up while it
waits behind a stream of higher ones."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

STRIDE = 1_000_000.0
AGING_PER_MINUTE = 0.1


def weight_of(priority_level: int, waited_s: float = 0.0) -> float:
    """Priority 1–10 is the base weight; each minute without a slot adds 10%."""
    return priority_level * (1.0 + AGING_PER_MINUTE * waited_s / 60.0)


@dataclass
class FairShare:
    passes: dict[str, float] = field(default_factory=dict)
    floor: float = 0.0

    def pick(
        self,
        wanting: Iterable[tuple[str, float, int]],
        slots: int,
        take: Callable[[str], bool],
    ) -> int:
        """Gives up to `slots` slots to the `(batch_id, weight, room)` candidates in stride
        order. `take(batch_id)` claims one slot and returns False when the batch has nothing
        left to run. Returns how many slots were given."""
        heap: list[tuple[float, str, float, int]] = []
        for batch_id, weight, room in wanting:
            if room <= 0 or weight <= 0:
                continue
            start = max(self.passes.get(batch_id, self.floor), self.floor)
            heap.append((start, batch_id, weight, room))
        heapq.heapify(heap)
        given = 0
        while heap and given < slots:
            current, batch_id, weight, room = heapq.heappop(heap)
            self.floor = current
            if not take(batch_id):
                self.passes[batch_id] = current
                continue
            given += 1
            room -= 1
            current += STRIDE / weight
            self.passes[batch_id] = current
            if room > 0:
                heapq.heappush(heap, (current, batch_id, weight, room))
        return given

    def forget(self, batch_id: str) -> None:
        self.passes.pop(batch_id, None)
