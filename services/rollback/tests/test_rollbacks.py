"""Rollbacks with in-memory ports: refusals with reasons, validation by checksum, reverse
completion order, dry runs, partial rollbacks, continuing after a crash mid-way, and waiting
for a batch the read model does not show yet."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from contracts.codec import encode, envelope_for
from contracts.events import BatchDeleted, BatchPurged, RollbackRequested
from contracts.topics import Topics
from jobkit import JobContext, JobType
from rollback.domain.plan import BatchFacts
from rollback.domain.request import Request
from rollback.handlers.rollbacks import Rollbacks
from servicekit.backups import digest_of, encode_snapshot
from servicekit.consume import TransientError
from servicekit.publisher import RecordingPublisher

pytestmark = pytest.mark.unit

T0 = datetime(2025, 1, 1, tzinfo=UTC)


class Item(BaseModel):
    key: str


class Store(JobType):
    """Sets keys of a dict; compensation puts the old value back."""

    name = "test.store"
    Input = Item

    def __init__(self) -> None:
        self.data: dict[str, int] = {}
        self.order: list[str] = []
        self.crash_on: str | None = None
        self.after_compensating: Callable[[str], None] | None = None

    async def backup(self, item: Any, ctx: JobContext) -> dict[str, Any] | None:
        return {"value": self.data.get(item.key)}

    async def compensate(self, item: Any, backup: dict[str, Any], ctx: JobContext) -> None:
        if item.key == self.crash_on:
            raise ConnectionRefusedError("the store went away")
        self.order.append(ctx.job_id)
        self.data[item.key] = backup["value"]
        if self.after_compensating is not None:
            self.after_compensating(ctx.job_id)

    async def state_of(
        self, item: Any, backup: dict[str, Any], ctx: JobContext
    ) -> dict[str, str] | None:
        return {item.key: digest_of(self.data.get(item.key))}

    def state_in(self, item: Any, backup: dict[str, Any]) -> dict[str, str] | None:
        return {item.key: digest_of(backup["value"])}


class Fakes:
    def __init__(self, strategy: str = "automatic", jobs: int = 3) -> None:
        self.backups: dict[str, dict[str, Any]] = {}
        self.plans: dict[str, dict[str, Any]] = {}
        self.writes: list[dict[str, Any]] = []  # each `Plans.set`
        self.job_type = Store()
        self.completed: dict[str, datetime | None] = {}
        self.params = {"backup_strategy": strategy}
        self.queued: dict[str, Request] = {}
        for i in range(jobs):
            job_id = f"b1.{i}"
            text, checksum = encode_snapshot({"value": i})
            self.backups[job_id] = {
                "_id": job_id,
                "job_id": job_id,
                "item": {"key": f"k{i}"},
                "data": text,
                "checksum": checksum,
                "completed_at": None,
            }
            self.job_type.data[f"k{i}"] = 100 + i
            # what the job left, as the executor records it
            self.backups[job_id]["after"] = {f"k{i}": digest_of(100 + i)}
            # completion order: b1.1, b1.0, b1.2, then the others in index order
            self.completed[job_id] = T0 + timedelta(seconds=[2, 1, 3][i] if i < 3 else i + 1)

    async def get(self, backup_id: str) -> dict[str, Any] | None:
        return self.backups.get(backup_id)

    async def of_batch(self, batch_id: str) -> AsyncIterator[dict[str, Any]]:
        for backup in list(self.backups.values()):
            yield backup

    async def facts(self, batch_id: str) -> BatchFacts | None:
        return BatchFacts(batch_id, "test.store", self.params, self.completed)

    def rollbacks(self, out: RecordingPublisher, checkpoint_steps: int = 100) -> Rollbacks:
        fakes = self

        class Plans:
            async def get(self, rollback_id: str) -> dict[str, Any] | None:
                return fakes.plans.get(rollback_id)

            async def create(self, doc: dict[str, Any]) -> dict[str, Any]:
                return fakes.plans.setdefault(doc["_id"], doc)

            async def set(self, rollback_id: str, fields: dict[str, Any]) -> None:
                fakes.plans[rollback_id] |= fields
                fakes.writes.append(fields)

            async def drop(self, rollback_id: str) -> None:
                fakes.plans.pop(rollback_id, None)

            async def drop_batch(self, batch_id: str) -> None:
                for key in [k for k, p in fakes.plans.items() if p["batch_id"] == batch_id]:
                    del fakes.plans[key]

        class Queue:  # what the handler does with it; the runner's use: test_runner.py
            async def add(self, request: Request) -> None:
                fakes.queued.setdefault(request.rollback_id, request)

            async def drop_batch(self, batch_id: str) -> None:
                for key in [k for k, r in fakes.queued.items() if r.batch_id == batch_id]:
                    del fakes.queued[key]

        return Rollbacks(
            self,
            out,
            Topics(),
            self,
            Plans(),
            {"test.store": self.job_type},
            Queue(),  # type: ignore[arg-type]
            checkpoint_steps=checkpoint_steps,
        )


async def request(rb: Rollbacks, **kw: Any) -> RollbackRequested:
    e = RollbackRequested(batch_id="b1", requested_by="u", **kw)
    env = envelope_for(e, producer="api", event_id="req-1")
    await rb.run(Request.of(env, e))
    return e


def types(out: RecordingPublisher) -> list[str]:
    return [m.envelope.type for m in out.sent]


async def test_compensates_in_reverse_completion_order_and_restores() -> None:
    fakes, out = Fakes(), RecordingPublisher()
    await request(fakes.rollbacks(out))
    assert fakes.job_type.order == ["b1.2", "b1.0", "b1.1"]
    assert fakes.job_type.data == {"k0": 0, "k1": 1, "k2": 2}
    assert types(out)[-1] == "RollbackCompleted"
    assert out.of_type("RollbackCompleted")[0].envelope.data["compensated_jobs"] == 3
    assert len(out.of_type("RollbackProgress")) == 3


async def test_a_corrupt_backup_refuses_the_rollback_naming_the_job() -> None:
    fakes, out = Fakes(), RecordingPublisher()
    fakes.backups["b1.1"]["data"] = fakes.backups["b1.1"]["data"].replace("1", "7")
    await request(fakes.rollbacks(out))
    failed = out.of_type("RollbackFailed")[0].envelope.data
    assert "b1.1" in failed["reason"]
    assert "checksum" in failed["failed_jobs"]["b1.1"]
    assert fakes.job_type.order == [], "something was changed"
    assert fakes.job_type.data["k1"] == 101


async def test_a_missing_backup_and_strategy_none_are_refused_with_reasons() -> None:
    fakes, out = Fakes(), RecordingPublisher()
    del fakes.backups["b1.0"]
    await request(fakes.rollbacks(out))
    assert "no backup" in out.of_type("RollbackFailed")[0].envelope.data["failed_jobs"]["b1.0"]
    fakes, out = Fakes(strategy="none"), RecordingPublisher()
    await request(fakes.rollbacks(out))
    assert "backup_strategy none" in out.of_type("RollbackFailed")[0].envelope.data["reason"]


async def test_dry_run_plans_and_changes_nothing() -> None:
    fakes, out = Fakes(), RecordingPublisher()
    await request(fakes.rollbacks(out), dry_run=True)
    planned = out.of_type("RollbackPlanned")[0].envelope.data
    assert [s["job_id"] for s in planned["steps"]] == ["b1.2", "b1.0", "b1.1"]
    assert out.of_type("RollbackCompleted")[0].envelope.data["dry_run"] is True
    assert fakes.job_type.order == []
    assert fakes.plans == {}, "a dry run's plan was kept"


async def test_a_refused_dry_run_says_it_was_one() -> None:
    fakes, out = Fakes(), RecordingPublisher()
    fakes.backups["b1.1"]["data"] = fakes.backups["b1.1"]["data"].replace("1", "7")
    await request(fakes.rollbacks(out), dry_run=True)
    refused = out.of_type("RollbackFailed")[0].envelope.data
    assert (refused["dry_run"], list(refused["failed_jobs"])) == (True, ["b1.1"])
    fakes, out = Fakes(), RecordingPublisher()
    fakes.backups["b1.1"]["data"] = fakes.backups["b1.1"]["data"].replace("1", "7")
    await request(fakes.rollbacks(out))
    assert out.of_type("RollbackFailed")[0].envelope.data["dry_run"] is False


async def test_partial_rollback_compensates_only_the_chosen_jobs() -> None:
    fakes, out = Fakes(), RecordingPublisher()
    await request(fakes.rollbacks(out), job_ids=["b1.1", "b1.2"])
    assert fakes.job_type.order == ["b1.2", "b1.1"]
    assert fakes.job_type.data["k0"] == 100


async def test_a_rollback_interrupted_mid_way_continues_from_its_last_checkpoint() -> None:
    fakes, out = Fakes(), RecordingPublisher()
    fakes.job_type.crash_on = "k0"  # the second step: the process "dies" there
    with pytest.raises(ConnectionRefusedError):
        await request(fakes.rollbacks(out, checkpoint_steps=1))
    assert fakes.job_type.order == ["b1.2"]
    fakes.job_type.crash_on = None
    again = RecordingPublisher()
    await request(fakes.rollbacks(again))  # run again, by a new process
    assert fakes.job_type.order == ["b1.2", "b1.0", "b1.1"]
    assert types(again)[-1] == "RollbackCompleted"
    finished = RecordingPublisher()
    await request(fakes.rollbacks(finished))  # and once more: only the outcome is repeated
    assert fakes.job_type.order == ["b1.2", "b1.0", "b1.1"]
    assert again.sent[-1].envelope.event_id == finished.sent[-1].envelope.event_id


async def test_steps_after_the_last_checkpoint_run_again() -> None:
    """Progress is stored once per `checkpoint_steps` steps: a crash in between runs the steps
    since the last checkpoint again, in the same order (each restores absolute state, so the
    result is the same), and every step's progress is announced once it counts."""
    fakes, out = Fakes(jobs=7), RecordingPublisher()
    fakes.job_type.crash_on = "k3"  # plan: b1.6, b1.5, b1.4, b1.3, b1.2, b1.0, b1.1
    with pytest.raises(ConnectionRefusedError):
        await request(fakes.rollbacks(out, checkpoint_steps=2))
    assert fakes.job_type.order == ["b1.6", "b1.5", "b1.4"]  # b1.4 is after the checkpoint
    first = [m.envelope for m in out.of_type("RollbackProgress")]
    assert [p.data["job_id"] for p in first] == ["b1.6", "b1.5"]
    fakes.job_type.crash_on = None
    again = RecordingPublisher()
    await request(fakes.rollbacks(again, checkpoint_steps=2))
    assert fakes.job_type.order[3:] == ["b1.4", "b1.3", "b1.2", "b1.0", "b1.1"]
    assert fakes.job_type.data == {f"k{i}": i for i in range(7)}
    later = [m.envelope for m in again.of_type("RollbackProgress")]
    assert [p.data["done"] for p in first + later] == list(range(1, 8))
    assert len({p.event_id for p in first + later}) == 7
    assert again.sent[-1].envelope.data["compensated_jobs"] == 7


async def test_progress_is_stored_once_per_checkpoint_not_after_every_step() -> None:
    fakes, out = Fakes(jobs=250), RecordingPublisher()
    await request(fakes.rollbacks(out))
    counts = [w["done_count"] for w in fakes.writes if "done_count" in w]
    assert counts == [100, 200, 250]
    assert len(out.of_type("RollbackProgress")) == 250
    assert len({m.envelope.event_id for m in out.of_type("RollbackProgress")}) == 250


async def test_a_batch_not_yet_projected_is_waited_for_then_refused() -> None:
    fakes, out = Fakes(), RecordingPublisher()
    projected = fakes.facts
    fakes.facts = unknown  # type: ignore[method-assign]
    rb = fakes.rollbacks(out)
    e = RollbackRequested(batch_id="b1", requested_by="scheduler")
    env = envelope_for(e, producer="scheduler", event_id="req-1")
    # just asked: tried again later (nothing stored, nothing published) until the batch is known
    with pytest.raises(TransientError):
        await rb.run(Request.of(env, e))
    assert out.sent == []
    assert fakes.plans == {}
    fakes.facts = projected  # type: ignore[method-assign]
    await rb.run(Request.of(env, e))
    assert types(out)[-1] == "RollbackCompleted"
    # asked long ago and still unknown: refused with the reason
    fakes, out = Fakes(), RecordingPublisher()
    fakes.facts = unknown  # type: ignore[method-assign]
    old = env.model_copy(update={"occurred_at": env.occurred_at - timedelta(minutes=5)})
    await fakes.rollbacks(out).run(Request.of(old, e))
    assert "no batch b1 is known" in out.of_type("RollbackFailed")[0].envelope.data["reason"]


async def unknown(batch_id: str) -> BatchFacts | None:
    return None


async def test_a_request_is_queued_once_and_nothing_runs_in_the_handler() -> None:
    fakes, out = Fakes(), RecordingPublisher()
    rb = fakes.rollbacks(out)
    woken: list[bool] = []
    rb.on_queued = lambda: woken.append(True)
    e = RollbackRequested(batch_id="b1", requested_by="u")
    env = envelope_for(e, producer="api", event_id="req-1")
    await rb.handle([(env, e), (env, e)])  # and a repeat in the same poll
    await rb.handle([(env, e)])  # and redelivered
    assert list(fakes.queued) == [Request.of(env, e).rollback_id]
    assert woken == [True, True]
    assert out.sent == []
    assert fakes.job_type.order == []


async def test_the_records_of_a_deleted_or_purged_batch_go() -> None:
    fakes, out = Fakes(), RecordingPublisher()
    rb = fakes.rollbacks(out)
    await request(rb)
    e = RollbackRequested(batch_id="b1", requested_by="u")
    await rb.handle([(envelope_for(e, producer="api", event_id="req-9"), e)])
    assert [p["batch_id"] for p in fakes.plans.values()] == ["b1"]
    assert len(fakes.queued) == 1
    gone = BatchDeleted(batch_id="b2", deleted_by="u")  # another batch's
    await rb.handle([(envelope_for(gone, producer="batch-api"), gone)])
    assert len(fakes.plans) == len(fakes.queued) == 1
    purged = BatchPurged(batch_id="b1", run_id="r1")
    await rb.handle([(envelope_for(purged, producer="scheduler"), purged)])
    assert fakes.plans == {}
    assert fakes.queued == {}


async def test_an_ended_rollback_run_again_only_repeats_its_outcome() -> None:
    fakes, out = Fakes(), RecordingPublisher()
    await request(fakes.rollbacks(out))
    writes = len(fakes.writes)
    again = RecordingPublisher()
    await request(fakes.rollbacks(again))
    assert fakes.job_type.order == ["b1.2", "b1.0", "b1.1"]
    assert len(fakes.writes) == writes, "the ended rollback's record was changed"
    ids = {m.envelope.event_id for m in out.sent}
    assert {m.envelope.event_id for m in again.sent} <= ids
    assert again.sent[-1].envelope.data["compensated_jobs"] == 3


async def test_give_up_ends_the_rollback_as_failed_with_the_reason() -> None:
    fakes, out = Fakes(), RecordingPublisher()
    rb = fakes.rollbacks(out)
    fakes.job_type.crash_on = "k0"
    with pytest.raises(ConnectionRefusedError):
        await request(rb)
    e = RollbackRequested(batch_id="b1", requested_by="u")
    req = Request.of(envelope_for(e, producer="api", event_id="req-1"), e)
    await rb.give_up(req, "KeyError: 'data'")
    (state,) = fakes.plans.values()
    assert (state["status"], state["reason"]) == ("rollback_failed", "KeyError: 'data'")
    assert out.sent[-1].envelope.type == "RollbackFailed"
    assert out.sent[-1].envelope.data["reason"] == "KeyError: 'data'"


async def test_a_dry_run_given_up_keeps_no_plan() -> None:
    fakes, out = Fakes(), RecordingPublisher()
    rb = fakes.rollbacks(out)
    e = RollbackRequested(batch_id="b1", requested_by="u", dry_run=True)
    req = Request.of(envelope_for(e, producer="api", event_id="req-2"), e)
    fakes.plans[req.rollback_id] = {"_id": req.rollback_id, "batch_id": "b1", "dry_run": True}
    await rb.give_up(req, "KeyError: 'data'")
    assert fakes.plans == {}
    failed = out.sent[-1].envelope.data
    assert (failed["dry_run"], failed["reason"]) == (True, "KeyError: 'data'")


async def test_a_rollback_of_thousands_of_jobs_fits_in_kafka_messages() -> None:
    """Every event listed the whole plan: past ~6,000 jobs one was larger than Kafka takes
    (1 MiB), and the rollback stopped at its announcement. Now they list the first 1,000 and
    count the rest; the rollback runs to its end."""
    jobs = 8000
    fakes, out = Fakes(jobs=jobs), RecordingPublisher()
    await request(fakes.rollbacks(out))
    assert max(len(encode(m.envelope)) for m in out.sent) < 1024 * 1024
    planned = next(m.envelope.data for m in out.sent if m.envelope.type == "RollbackPlanned")
    assert len(planned["steps"]) == 1000
    assert planned["steps_total"] == jobs
    first = [step["job_id"] for step in planned["steps"][:3]]
    assert first == ["b1.7999", "b1.7998", "b1.7997"]  # the plan's order: latest first
    assert out.sent[-1].envelope.data["compensated_jobs"] == jobs
    assert len(fakes.job_type.order) == len(set(fakes.job_type.order)) == jobs


async def test_refusals_beyond_a_thousand_are_counted_not_listed() -> None:
    fakes, out = Fakes(jobs=1500), RecordingPublisher()
    fakes.backups.clear()  # every backup missing
    await request(fakes.rollbacks(out))
    sent = {m.envelope.type: m.envelope.data for m in out.sent}
    assert (
        len(sent["RollbackPlanned"]["refusals"]),
        sent["RollbackPlanned"]["refusals_total"],
    ) == (
        1000,
        1500,
    )
    assert (len(sent["BackupValidated"]["invalid"]), sent["BackupValidated"]["invalid_total"]) == (
        1000,
        1500,
    )
    assert len(sent["RollbackFailed"]["failed_jobs"]) == 1000
    assert sent["RollbackFailed"]["failed_jobs_total"] == 1500
    assert fakes.job_type.order == []


async def test_a_rollback_begun_before_done_was_a_count_continues_where_it_was() -> None:
    """A rollback state kept the ids of the jobs done (`done`); one interrupted then goes on
    from there after an upgrade, repeating none."""
    fakes, out = Fakes(), RecordingPublisher()
    fakes.job_type.crash_on = "k0"  # dies at the second step
    with pytest.raises(ConnectionRefusedError):
        await request(fakes.rollbacks(out, checkpoint_steps=1))
    (state,) = fakes.plans.values()
    assert state["done_count"] == 1
    del state["done_count"]
    state["done"] = ["b1.2"]  # as it was stored before
    fakes.job_type.crash_on = None
    await request(fakes.rollbacks(RecordingPublisher()))
    assert fakes.job_type.order == ["b1.2", "b1.0", "b1.1"]


async def test_a_change_made_after_a_job_refuses_the_rollback_unless_forced() -> None:
    """Restoring b1.1's backup would overwrite what someone wrote to k1 after the job: the
    rollback is refused naming the job and the key, and nothing is changed; forced, it
    restores every job."""
    fakes, out = Fakes(), RecordingPublisher()
    fakes.job_type.data["k1"] = 555  # changed after the batch
    await request(fakes.rollbacks(out))
    refused = out.of_type("RollbackFailed")[0].envelope.data
    assert list(refused["failed_jobs"]) == ["b1.1"]
    assert "changed after the job: k1" in refused["failed_jobs"]["b1.1"]
    assert fakes.job_type.order == []
    assert fakes.job_type.data["k1"] == 555

    forced, out = Fakes(), RecordingPublisher()
    forced.job_type.data["k1"] = 555
    e = RollbackRequested(batch_id="b1", requested_by="u", force=True)
    await forced.rollbacks(out).run(
        Request.of(envelope_for(e, producer="api", event_id="req-2"), e)
    )
    assert out.sent[-1].envelope.type == "RollbackCompleted"
    assert forced.job_type.data == {"k0": 0, "k1": 1, "k2": 2}


async def test_a_key_two_jobs_of_the_batch_left_is_judged_by_the_later_one() -> None:
    """b1.2 (completed last) and b1.0 both wrote k0; the state now is b1.2's. Not a change
    after b1.0: b1.2's compensation restores what b1.0 left before b1.0's runs."""
    fakes, out = Fakes(), RecordingPublisher()
    text, checksum = encode_snapshot({"value": 100})  # k0 before b1.2: what b1.0 left
    fakes.backups["b1.2"] |= {"item": {"key": "k0"}, "data": text, "checksum": checksum}
    fakes.job_type.data["k0"] = 200
    fakes.backups["b1.2"]["after"] = {"k0": digest_of(200)}
    await request(fakes.rollbacks(out))
    assert out.sent[-1].envelope.type == "RollbackCompleted", out.sent[-1].envelope.data
    assert fakes.job_type.order == ["b1.2", "b1.0", "b1.1"]
    assert fakes.job_type.data["k0"] == 0


async def test_a_change_while_the_rollback_runs_stops_it_before_that_job() -> None:
    fakes, out = Fakes(), RecordingPublisher()

    def meddle(job_id: str) -> None:
        if job_id == "b1.2":  # the first step; someone then writes what b1.0 (next) left
            fakes.job_type.data["k0"] = 999

    fakes.job_type.after_compensating = meddle
    await request(fakes.rollbacks(out))
    failed = out.of_type("RollbackFailed")[0].envelope.data
    assert "k0 changed after the job while the rollback ran" in failed["reason"]
    assert "1 job(s) were restored" in failed["reason"]
    assert fakes.job_type.order == ["b1.2"]
    assert fakes.job_type.data["k0"] == 999


async def test_a_rollback_asked_again_after_one_stopped_part_way_goes_on() -> None:
    """The first rollback restored b1.2 and stopped; the jobs it restored are not "changed
    after the job" for the next one, which restores the rest."""
    fakes, out = Fakes(), RecordingPublisher()
    fakes.job_type.data["k0"] = 999
    fakes.job_type.after_compensating = None
    first = RollbackRequested(batch_id="b1", requested_by="u", force=True, job_ids=["b1.2"])
    rb = fakes.rollbacks(out)
    await rb.run(Request.of(envelope_for(first, producer="api", event_id="req-a"), first))
    assert fakes.job_type.data["k2"] == 2
    fakes.job_type.data["k0"] = 100  # the change after b1.0 undone by hand
    again = RecordingPublisher()
    await request(fakes.rollbacks(again))
    assert again.sent[-1].envelope.type == "RollbackCompleted", again.sent[-1].envelope.data
    assert fakes.job_type.data == {"k0": 0, "k1": 1, "k2": 2}
