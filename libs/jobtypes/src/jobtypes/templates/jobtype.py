"""`templates.consolidate`: one job consolidates a set of related templates of the library.

Items are `{"template_ids": [...]}` (the library's consolidation endpoint plans them so that
duplicates and same-name templates share a job); the batch's `config.params` choose
`operation` (merge | replace | archive), `conflict_resolution` (automatic | interactive |
skip), `similarity_threshold` and `backup_strategy` (automatic | manual | none).

The job computes its change from the templates' state before the job (the backup, when an
earlier attempt took one) and writes absolute documents, so repeating it changes nothing more
and reports the same counts. With `interactive`, conflicts without a decision are parked in
`library_conflicts` and the job ends with jobkit's `AwaitingDecision` after applying everything
else (failed, but no error of the batch: `stop_on_error` does not stop for it, nor does it make
the batch fail); a decision through the API runs the job again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pymongo.errors import PyMongoError

from jobkit import (
    AwaitingDecision,
    JobContext,
    JobType,
    PermanentError,
    Resources,
    RetryableError,
)
from jobtypes.templates.consolidation import Outcome, consolidate
from jobtypes.templates.library import TemplateLibrary, defects
from servicekit.backups import MongoBackups, decode_snapshot, digest_of


class ConsolidateInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template_ids: list[str] = Field(min_length=1, max_length=5000)


class ConsolidateParams(BaseModel):
    """The batch-wide choices, from `config.params`."""

    model_config = ConfigDict(extra="ignore")

    operation: Literal["merge", "replace", "archive"] = "merge"
    conflict_resolution: Literal["automatic", "interactive", "skip"] = "automatic"
    similarity_threshold: float = Field(default=0.9, ge=0.5, le=1.0)
    backup_strategy: Literal["automatic", "manual", "none"] = "automatic"
    manual_backup_id: str | None = None


class ConsolidateOutput(BaseModel):
    templates_processed: int
    duplicates_removed: int
    conflicts_resolved: int
    conflicts_skipped: int
    conflicts_awaiting_decision: int


class TemplatesConsolidate(JobType):
    name = "templates.consolidate"
    Input = ConsolidateInput
    Output = ConsolidateOutput
    description = "Merges, replaces or archives duplicate templates; resolves name conflicts."

    def __init__(self) -> None:
        self._library: TemplateLibrary | None = None
        self._backups: MongoBackups | None = None

    async def setup(self, resources: Resources) -> None:
        if resources.store is not None:
            self._library = TemplateLibrary(resources.store)
            self._backups = MongoBackups(resources.store)

    @property
    def library(self) -> TemplateLibrary:
        if self._library is None:
            raise PermanentError("no store was given to this job type", error_class="NoStore")
        return self._library

    async def backup(self, item: ConsolidateInput, ctx: JobContext) -> dict[str, Any] | None:
        """The templates this job will write (and those of conflicts a decision may change),
        as they are now: the job's outcome is known before it runs."""
        params = ConsolidateParams.model_validate(ctx.params)
        current = await self.library.get_many(item.template_ids)
        _refuse_unreadable(current)
        outcome = self._outcome(list(current.values()), params, {})
        touched = set(outcome.writes) | {i for p in outcome.awaiting for i in p["template_ids"]}
        return {"templates": {i: current.get(i) for i in sorted(touched)}}

    async def compensate(
        self, item: ConsolidateInput, backup: dict[str, Any], ctx: JobContext
    ) -> None:
        try:
            for template_id, doc in backup["templates"].items():
                await self.library.write(template_id, doc)
        except PyMongoError as exc:
            raise RetryableError(f"the store failed: {exc}", error_class="StoreError") from exc

    async def state_of(
        self, item: ConsolidateInput, backup: dict[str, Any], ctx: JobContext
    ) -> dict[str, str] | None:
        """Each template the compensation would write back, as it is now (absent: "")."""
        ids = sorted(backup["templates"])
        current = await self.library.get_many(ids)
        return {i: digest_of(current[i]) if i in current else "" for i in ids}

    def state_in(self, item: ConsolidateInput, backup: dict[str, Any]) -> dict[str, str] | None:
        """Each template as the compensation writes it back (absent: "")."""
        templates = backup["templates"]
        return {i: digest_of(doc) if doc is not None else "" for i, doc in templates.items()}

    @staticmethod
    def _outcome(
        templates: list[dict[str, Any]],
        params: ConsolidateParams,
        decisions: dict[str, dict[str, Any]],
    ) -> Outcome:
        return consolidate(
            templates,
            operation=params.operation,
            resolution=params.conflict_resolution,
            threshold=params.similarity_threshold,
            now=datetime.now(UTC),
            decisions=decisions,
        )

    async def run(self, item: ConsolidateInput, ctx: JobContext) -> dict[str, Any]:
        try:
            return await self._run(item, ctx)
        except PyMongoError as exc:  # a busy or unreachable store: worth another attempt
            raise RetryableError(f"the store failed: {exc}", error_class="StoreError") from exc

    async def _run(self, item: ConsolidateInput, ctx: JobContext) -> dict[str, Any]:
        params = ConsolidateParams.model_validate(ctx.params)
        state = await self._state_before(item, ctx, params)
        _refuse_unreadable(state)
        before = list(state.values())
        outcome = self._outcome(before, params, {})
        decisions: dict[str, dict[str, Any]] = {}
        for parked in outcome.awaiting:
            doc = await self.library.conflict(parked["_id"])
            if doc is not None and doc.get("decision"):
                decisions[parked["_id"]] = doc["decision"]
        if decisions:
            outcome = self._outcome(before, params, decisions)
        for n, (template_id, doc) in enumerate(sorted(outcome.writes.items())):
            await self.library.write(template_id, doc)
            if n % 100 == 99:
                await ctx.report_progress(None, f"{n + 1} templates written")
        if outcome.awaiting:
            now = datetime.now(UTC)
            for parked in outcome.awaiting:
                await self.library.park_conflict(
                    {
                        **parked,
                        "batch_id": ctx.batch_id,
                        "job_id": ctx.job_id,
                        "status": "awaiting_decision",
                        "created_at": now,
                    }
                )
            ids = ", ".join(p["_id"] for p in outcome.awaiting)
            # nothing went wrong: a person decides, and the job runs again (stopping nothing)
            raise AwaitingDecision(f"{len(outcome.awaiting)} conflict(s) await a decision: {ids}")
        if outcome.conflicts_skipped:
            ctx.warn(
                f"{outcome.conflicts_skipped} conflict(s) left as they were "
                "(conflict_resolution: skip)"
            )
        return outcome.metrics()

    async def _state_before(
        self, item: ConsolidateInput, ctx: JobContext, params: ConsolidateParams
    ) -> dict[str, dict[str, Any]]:
        """The templates as they were before this job: from its backup (or the batch's
        manual backup) when there is one, else from the library."""
        backup = None
        if self._backups is not None:
            if params.backup_strategy == "manual":
                if not params.manual_backup_id:
                    raise PermanentError(
                        "backup_strategy is manual but the batch names no manual backup",
                        error_class="ManualBackupMissing",
                    )
                backup = await self._backups.get(params.manual_backup_id)
                if backup is None:
                    raise PermanentError(
                        f"the manual backup {params.manual_backup_id} does not exist",
                        error_class="ManualBackupMissing",
                    )
            elif params.backup_strategy == "automatic":
                backup = await self._backups.get(ctx.job_id)
        current = await self.library.get_many(item.template_ids)
        if backup is None:
            return current
        # the backup holds every template the job changes, as it was; the rest are unchanged
        snapshot = decode_snapshot(backup["data"])["templates"]
        state = {**current, **{i: d for i, d in snapshot.items() if i in item.template_ids}}
        return {i: d for i, d in state.items() if d is not None}


def _refuse_unreadable(templates: dict[str, dict[str, Any]]) -> None:
    """Fails the job, changing nothing, when a template it would consolidate is not a whole
    template (changed outside the API after the consolidation was planned)."""
    unreadable = [(i, found) for i, doc in sorted(templates.items()) if (found := defects(doc))]
    if unreadable:
        listed = "; ".join(f"{i}: {', '.join(found)}" for i, found in unreadable[:10])
        raise PermanentError(
            f"{len(unreadable)} template(s) are not whole templates ({listed}): mend them "
            "through the API and retry the job",
            error_class="InvalidTemplate",
        )
