"""`JobsDispatched`: each job of a group is the `JobDispatched` it stands for."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from contracts import decode, encode, envelope_for
from contracts.events import DispatchedJob, JobDispatched, JobsDispatched
from contracts.vocabulary import ResourceLimits

pytestmark = pytest.mark.unit

AT = datetime(2026, 1, 1, tzinfo=UTC)


def test_each_job_of_a_group_reads_as_its_own_dispatch_after_the_wire() -> None:
    group = JobsDispatched(
        batch_id="b_1",
        job_type="files.extract_metadata",
        jobs=[
            DispatchedJob(job_id="b_1.4", index=4, attempt=1, item={"path": "a.txt"}),
            DispatchedJob(job_id="b_1.9", index=9, attempt=3, item={"path": "b.txt"}),
        ],
        params={"defaults": {"encoding": "utf-8"}},
        timeout_s=60,
        lease_s=15,
        dispatched_at=AT,
        resource_limits=ResourceLimits(max_memory_mb=256),
    )
    _, decoded = decode(encode(envelope_for(group, producer="scheduler")))
    assert isinstance(decoded, JobsDispatched)
    second = decoded.each()[1]
    assert (
        second.body()
        == JobDispatched(
            job_id="b_1.9",
            batch_id="b_1",
            index=9,
            job_type="files.extract_metadata",
            attempt=3,
            item={"path": "b.txt"},
            params={"defaults": {"encoding": "utf-8"}},
            timeout_s=60,
            lease_s=15,
            dispatched_at=AT,
            resource_limits=ResourceLimits(max_memory_mb=256),
        ).body()
    )
    assert [d.job_id for d in decoded.each()] == ["b_1.4", "b_1.9"]


def test_a_group_holds_at_least_one_job_of_a_real_attempt() -> None:
    shared = {"batch_id": "b", "job_type": "t", "timeout_s": 1, "lease_s": 1, "dispatched_at": AT}
    with pytest.raises(ValidationError, match="at least 1 item"):
        JobsDispatched.model_validate({**shared, "jobs": []})
    bad = {"job_id": "b.0", "index": 0, "attempt": 0, "item": {}}
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        JobsDispatched.model_validate({**shared, "jobs": [bad]})
