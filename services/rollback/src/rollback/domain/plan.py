"""Planning a rollback, as a pure function of what is known about the batch.

Rules: a batch that ran with `backup_strategy: none` cannot be rolled back; with `manual`, the
one scope backup is restored (whole batch only); with `automatic`, every completed job (or the
chosen ones) is compensated from its own backup, the last completed first. Every backup must
be present and match its checksum, and (unless forced) what each job left must not have been
changed after it, or the rollback is refused naming each job at fault and nothing is
changed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from contracts.events import RollbackStep
from servicekit.backups import checksum_of

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class BatchFacts:
    """What the rollback needs to know about a batch."""

    batch_id: str
    job_type: str
    params: dict[str, Any]
    completed: dict[str, datetime | None]  # job id → when it completed


@dataclass
class Plan:
    steps: list[RollbackStep] = field(default_factory=list)
    refusals: dict[str, str] = field(default_factory=dict)
    reason: str | None = None  # why the whole rollback is refused

    @property
    def refused(self) -> bool:
        return self.reason is not None


@dataclass(frozen=True)
class BackupSummary:
    """What planning keeps of a backup: not its content, which is read again for its step
    (a batch's backups can be far larger than the rollback service's memory)."""

    backup_id: str
    job_id: str | None
    completed_at: datetime | None
    problem: str | None  # why it cannot be restored, or None
    keys: frozenset[str] = frozenset()  # what the job left and a compensation would overwrite
    changed: tuple[str, ...] = ()  # those of `keys` that changed after the job


def is_intact(backup: dict[str, Any]) -> bool:
    """Whether the backup's content matches its checksum."""
    data = backup.get("data")
    return isinstance(data, str) and checksum_of(data) == backup.get("checksum")


def summarise(backup: dict[str, Any], changed: Sequence[str] = ()) -> BackupSummary:
    """The backup's summary (its checksum checked here); `changed`: the keys of what the job
    left (`after`) that are different now."""
    problem = None
    if not is_intact(backup):
        problem = f"backup {backup['_id']} is corrupt: its content does not match its checksum"
    return BackupSummary(
        backup["_id"],
        backup.get("job_id"),
        backup.get("completed_at"),
        problem,
        frozenset(backup.get("after") or ()),
        tuple(changed),
    )


def changed_keys(
    after: dict[str, str] | None, now: dict[str, str] | None, restored: dict[str, str] | None
) -> list[str]:
    """The keys whose state now is neither what the job left nor what its compensation
    restores (a rollback that stopped, or a step run again after a crash, restored it
    already); nothing known: none."""
    if not after or now is None:
        return []
    return sorted(
        k
        for k, digest in after.items()
        if now.get(k) != digest and (restored is None or now.get(k) != restored.get(k))
    )


def validate(backup: BackupSummary | None) -> str | None:
    """Why a backup cannot be restored, or None if it can."""
    if backup is None:
        return "no backup was recorded for it"
    return backup.problem


def plan_rollback(
    facts: BatchFacts,
    backups: dict[str, BackupSummary],
    *,
    job_ids: list[str] | None,
    can_compensate: bool,
    force: bool = False,
) -> Plan:
    strategy = facts.params.get("backup_strategy", "automatic")
    if not can_compensate:
        return Plan(reason=f"job type {facts.job_type} cannot be rolled back")
    if strategy == "none":
        return Plan(
            reason="the batch ran with backup_strategy none: nothing was recorded that could "
            "be restored"
        )
    if strategy == "manual":
        return _manual(facts, backups, job_ids)
    completed = dict(facts.completed)
    for backup in backups.values():  # a job whose completion the read model has not seen yet
        if backup.job_id and backup.completed_at is not None:
            completed.setdefault(backup.job_id, backup.completed_at)
    out = Plan()
    chosen = list(completed) if job_ids is None else list(dict.fromkeys(job_ids))
    for job_id in chosen:
        if job_id not in completed:
            out.refusals[job_id] = "the job did not complete: it has nothing to undo"
            continue
        problem = validate(backups.get(job_id))
        if problem is not None:
            out.refusals[job_id] = problem
            continue
        out.steps.append(
            RollbackStep(
                job_id=job_id,
                backup_id=backups[job_id].backup_id,
                job_type=facts.job_type,
                completed_at=completed[job_id],
            )
        )
    out.steps.sort(key=lambda s: (s.completed_at or EPOCH, s.job_id), reverse=True)
    if not force:
        _refuse_overwrites(out, backups)
    if out.refusals:
        named = "; ".join(f"{j}: {why}" for j, why in sorted(out.refusals.items())[:10])
        out.reason = f"{len(out.refusals)} job(s) cannot be restored, nothing was changed: {named}"
    elif not out.steps:
        out.reason = "the batch has no completed jobs to roll back"
    return out


def _refuse_overwrites(plan: Plan, backups: dict[str, BackupSummary]) -> None:
    """Refuses the jobs whose compensation would overwrite a change made after them. In the
    plan's order (the last completed first) a key is judged by the first job that left it: a
    later job of the plan that left it too finds it as that one's compensation restores it."""
    seen: set[str] = set()
    for step in plan.steps:
        summary = backups[step.backup_id]
        overwritten = [k for k in summary.changed if k not in seen]
        seen |= summary.keys
        if overwritten:
            named = ", ".join(overwritten[:5]) + (" …" if len(overwritten) > 5 else "")
            plan.refusals[step.job_id] = (
                f"changed after the job: {named} (the rollback would overwrite it; force it "
                "to overwrite)"
            )
    plan.steps = [s for s in plan.steps if s.job_id not in plan.refusals]


def _manual(
    facts: BatchFacts, backups: dict[str, BackupSummary], job_ids: list[str] | None
) -> Plan:
    if job_ids is not None:
        return Plan(
            reason="a manual backup restores the batch's whole scope; partial rollback needs "
            "backup_strategy automatic"
        )
    backup_id = facts.params.get("manual_backup_id")
    backup = backups.get(backup_id) if isinstance(backup_id, str) else None
    problem = validate(backup)
    if problem is not None or backup is None:
        return Plan(refusals={"manual": problem or ""}, reason=f"the manual backup: {problem}")
    step = RollbackStep(job_id="manual", backup_id=backup.backup_id, job_type=facts.job_type)
    return Plan(steps=[step])
