"""Deadlines: predict a batch's finish from its throughput, and raise its weight as the time
it needs approaches the time it has left.

`pressure` = needed / left, where needed = remaining jobs / throughput and left = deadline -
now. Up to one half nothing changes; from there the weight multiplier rises linearly to
`MAX_BOOST` at 1 (the batch is at risk: at this pace it would finish late), and stays there.
A batch that has not finished a job yet has no throughput: it is judged only by whether the
deadline has passed."""

from __future__ import annotations

from dataclasses import dataclass

MAX_BOOST = 4.0
CALM_PRESSURE = 0.5


@dataclass(frozen=True)
class DeadlineView:
    boost: float
    at_risk: bool
    missed: bool
    predicted_finish: float | None


def judge(
    now: float, deadline: float, remaining: float, finished: float, elapsed_s: float
) -> DeadlineView:
    """How a batch with `remaining` jobs to go, `finished` done in `elapsed_s`, stands (in
    jobs: what its running jobs have done of themselves counts)."""
    if remaining <= 0:
        return DeadlineView(1.0, False, False, now)
    left = deadline - now
    if left <= 0:
        return DeadlineView(MAX_BOOST, True, True, None)
    if finished <= 0 or elapsed_s <= 0:
        return DeadlineView(1.0, False, False, None)
    needed = remaining / (finished / elapsed_s)
    pressure = needed / left
    ramp = (pressure - CALM_PRESSURE) / (1.0 - CALM_PRESSURE)
    boost = 1.0 + (MAX_BOOST - 1.0) * min(1.0, max(0.0, ramp))
    return DeadlineView(boost, pressure > 1.0, False, now + needed)
