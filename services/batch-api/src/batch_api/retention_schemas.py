"""HTTP shapes of `/v1/retention`: a tenant's retention policy and its runs."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_DAYS = 36_500.0
Days = Field(
    default=None,
    ge=0,
    le=MAX_DAYS,
    allow_inf_nan=False,
    description="days (fractions allowed); null switches this step off",
)


class RetentionPolicyBody(BaseModel):
    """The whole policy (PUT replaces it). Ages count from when a batch finished (archiving)
    or was archived (deletion). Only terminal batches are ever archived; only archived ones
    are deleted."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        default=False, description="run it every period (manual runs work either way)"
    )
    archive_after_days: float | None = Days
    failed_archive_after_days: float | None = Field(
        default=None,
        ge=0,
        le=MAX_DAYS,
        allow_inf_nan=False,
        description="for failed and rollback_failed batches (e.g. kept longer); "
        "null: archive_after_days applies",
    )
    delete_archived_after_days: float | None = Days

    @model_validator(mode="after")
    def _meaningful(self) -> RetentionPolicyBody:
        if self.enabled and (
            self.archive_after_days is None
            and self.failed_archive_after_days is None
            and self.delete_archived_after_days is None
        ):
            raise ValueError("an enabled policy needs at least one of the *_days settings")
        return self


class RetentionPolicyPublic(RetentionPolicyBody):
    revision: int
    updated_at: datetime | None
    updated_by: str | None


class RetentionRunBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dry_run: bool = Field(default=True, description="report what would happen; change nothing")


class RetentionRun(BaseModel):
    run_id: str
    status: Literal["requested", "completed"]
    dry_run: bool
    trigger: Literal["schedule", "manual"]
    requested_by: str
    requested_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    archived: int = 0
    deleted: int = 0
    archived_ids: list[str] = Field(default_factory=list)
    deleted_ids: list[str] = Field(default_factory=list)
    skipped_non_terminal: int = 0
