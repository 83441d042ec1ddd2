"""HTTP schemas of the template library (`/v1/library`): `XCreate`/`XUpdate` for requests
(unknown fields rejected), `XPublic` for responses."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from batch_api.schemas import Priority, Tag

MAX_IMPORT = 10_000


class TemplateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    category: str = Field(default="general", min_length=1, max_length=100)
    body: str = Field(min_length=1, max_length=200_000)
    variables: list[str] = Field(default_factory=list, max_length=200)
    tags: list[str] = Field(default_factory=list, max_length=50)


class TemplateUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    category: str | None = Field(default=None, min_length=1, max_length=100)
    body: str | None = Field(default=None, min_length=1, max_length=200_000)
    variables: list[str] | None = Field(default=None, max_length=200)
    tags: list[str] | None = Field(default=None, max_length=50)
    status: Literal["active", "archived"] | None = None


class TemplatePublic(BaseModel):
    id: str
    name: str
    category: str
    body: str
    variables: list[str]
    tags: list[str]
    status: str
    canonical_id: str | None = None
    created_at: datetime | None = Field(
        description="Null only for a document written outside the API without it (see defects)."
    )
    updated_at: datetime | None = Field(
        description="Null only for a document written outside the API without it (see defects)."
    )
    version: int
    defects: list[str] = Field(
        default_factory=list,
        description="What keeps the stored document from being a whole template (one written "
        "outside the API): a consolidation refuses it until a PATCH mends it. Empty when none.",
    )


class TemplatePage(BaseModel):
    items: list[TemplatePublic]
    next_cursor: str | None = None


class TemplateImport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    templates: list[TemplateCreate] = Field(min_length=1, max_length=MAX_IMPORT)


class ImportResult(BaseModel):
    imported: int
    ids: list[str]


class TemplateFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: str | None = None
    tags: list[str] | None = Field(default=None, description="Templates with any of these tags.")
    name_contains: str | None = None


class ConsolidationRequest(BaseModel):
    """Which templates (ids or a filter; neither means the whole library) and how."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="template consolidation", min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    priority: Priority = "medium"
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    operation: Literal["merge", "replace", "archive"] = "merge"
    template_ids: list[str] | None = Field(default=None, max_length=100_000)
    filter: TemplateFilter | None = None
    backup_strategy: Literal["automatic", "manual", "none"] = "automatic"
    conflict_resolution: Literal["automatic", "interactive", "skip"] = "automatic"
    similarity_threshold: float = Field(default=0.9, ge=0.5, le=1.0)
    templates_per_job: int = Field(default=50, ge=1, le=1000)
    max_concurrent_jobs: int = Field(default=2, ge=1, le=1000)
    stop_on_error: bool = Field(
        default=False, description="The first job that fails for good stops the batch."
    )
    rollback_on_failure: bool = False

    @model_validator(mode="after")
    def _one_scope(self) -> ConsolidationRequest:
        if self.template_ids is not None and self.filter is not None:
            raise ValueError("give template_ids or filter, not both")
        return self


class ConsolidationPlan(BaseModel):
    templates: int
    duplicates: int
    conflicts: int
    jobs: int
    missing_ids: list[str] = Field(default_factory=list)


class ConsolidationCreated(BaseModel):
    batch_id: str
    status: str
    plan: ConsolidationPlan | None = Field(
        description="What the batch does; null when this answers a repeat by its "
        "`Idempotency-Key` (the plan was the first request's, of the library as it was)."
    )
    manual_backup_id: str | None = None


class ConflictPublic(BaseModel):
    id: str
    name: str
    template_ids: list[str]
    batch_id: str
    job_id: str
    status: str
    decision: dict[str, str] | None = None


class ConflictDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keep: str = Field(min_length=1, description="The id of the template that keeps the name.")
