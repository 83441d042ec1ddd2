"""Topic names and partition keys: the one place they are defined.

Everything about a batch is keyed by batch id, so it stays in order per batch; dispatches are
keyed by job id, so they spread over executors. `prefix` isolates a deployment (or a test)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    prefix: str = ""

    def _name(self, base: str) -> str:
        return f"{self.prefix}batchyard.{base}"

    @property
    def batch_commands(self) -> str:
        """batch-api → scheduler, reporter, rollback. Key: batch id."""
        return self._name("batch.commands")

    @property
    def batch_events(self) -> str:
        """scheduler → reporter, rollback, subscribers. Key: batch id. Envelope `seq` is set."""
        return self._name("batch.events")

    @property
    def job_dispatch(self) -> str:
        """scheduler → executors. Key: job id."""
        return self._name("job.dispatch")

    @property
    def job_events(self) -> str:
        """executors → scheduler, reporter. Key: batch id."""
        return self._name("job.events")

    @property
    def executor_heartbeats(self) -> str:
        """executors → scheduler. Key: executor id."""
        return self._name("executor.heartbeats")

    @property
    def control(self) -> str:
        """scheduler → every executor (each in its own group). Key: batch id."""
        return self._name("control")

    @property
    def rollback_events(self) -> str:
        """rollback → reporter, scheduler. Key: batch id."""
        return self._name("rollback.events")

    @property
    def reports(self) -> str:
        """reporter → subscribers. Key: batch id."""
        return self._name("reports")

    @property
    def schedules(self) -> str:
        """batch-api → scheduler. Key: schedule id."""
        return self._name("schedules")

    @property
    def retention(self) -> str:
        """batch-api → scheduler (policies, run requests; key: tenant); scheduler → batch-api,
        reporter (archived and purged batches, key: batch id; run outcomes, key: tenant)."""
        return self._name("retention")

    @property
    def dead_letter(self) -> str:
        """Any consumer → operators. Poison messages with the reason and the original bytes."""
        return self._name("dead-letter")

    def all(self) -> list[str]:
        return [
            self.batch_commands,
            self.batch_events,
            self.job_dispatch,
            self.job_events,
            self.executor_heartbeats,
            self.control,
            self.rollback_events,
            self.reports,
            self.schedules,
            self.retention,
            self.dead_letter,
        ]


def job_id_for(batch_id: str, index: int) -> str:
    """Job ids are derived from the batch and the item's index, so they are deterministic."""
    return f"{batch_id}.{index}"


def batch_id_of(job_id: str) -> str:
    return job_id.rsplit(".", 1)[0]
