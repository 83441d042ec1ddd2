"""HTTP shapes of `/v1/templates`: reusable batch specifications that people instantiate."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from batch_api.schemas import MAX_INLINE_ITEMS, Priority, SizedConfig, Tag, User, Visibility
from contracts.tolerant import validate_tolerantly
from contracts.vocabulary import BatchConfig


class TemplateSpec(BaseModel):
    """What a batch made from the template gets, unless the instantiation overrides it."""

    model_config = ConfigDict(extra="forbid")

    job_type: str = Field(min_length=1, max_length=100)
    priority: Priority = "medium"
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    config: SizedConfig = BatchConfig()
    items: list[dict[str, Any]] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_INLINE_ITEMS,
        description="items every batch from it runs; if unset, each instantiation brings its own",
    )


class TemplateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    category: str = Field(default="general", min_length=1, max_length=100)
    visibility: Visibility = Field(
        default="private",
        description="private: its owner, the users it is shared with and admins; "
        "tenant: everyone in the tenant",
    )
    shared_with: list[User] = Field(default_factory=list, max_length=100)
    spec: TemplateSpec


class TemplateFromBatch(BaseModel):
    """A template that makes batches like an existing one: its job type, priority, tags,
    configuration and (unless `with_items` is false) its items."""

    model_config = ConfigDict(extra="forbid")

    batch_id: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    category: str = Field(default="general", min_length=1, max_length=100)
    visibility: Visibility = "private"
    shared_with: list[User] = Field(default_factory=list, max_length=100)
    with_items: bool = Field(
        default=True,
        description="keep the batch's items (at most 10,000) in the template; without them, "
        "each instantiation brings its own",
    )


class TemplateUpdate(BaseModel):
    """Changes to a template; absent fields stay. Only its owner or an admin may change it."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    category: str | None = Field(default=None, min_length=1, max_length=100)
    visibility: Visibility | None = None
    shared_with: list[User] | None = Field(default=None, max_length=100)
    spec: TemplateSpec | None = None


class TemplatePublic(BaseModel):
    id: str
    name: str
    description: str
    category: str
    visibility: Visibility
    shared_with: list[str]
    owner: str
    spec: TemplateSpec
    usage_count: int
    last_used_at: datetime | None
    created_at: datetime
    updated_at: datetime | None

    @classmethod
    def of(cls, doc: dict[str, Any]) -> TemplatePublic:
        return cls(
            id=doc["_id"],
            name=doc["name"],
            description=doc.get("description", ""),
            category=doc.get("category", "general"),
            visibility=doc.get("visibility", "private"),
            shared_with=doc.get("shared_with", []),
            owner=doc["owner"],
            spec=validate_tolerantly(TemplateSpec, doc["spec"]),
            usage_count=int(doc.get("usage_count") or 0),
            last_used_at=doc.get("last_used_at"),
            created_at=doc["created_at"],
            updated_at=doc.get("updated_at"),
        )


class TemplatePage(BaseModel):
    items: list[TemplatePublic]
    next_cursor: str | None = None


class CategoryCount(BaseModel):
    category: str
    templates: int


class Instantiate(BaseModel):
    """Overrides for the batch made from a template; absent fields come from the template.
    `config` fields given here replace the template's (the rest of its config stays)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    priority: Priority | None = None
    tags: list[Tag] | None = Field(default=None, max_length=50)
    deadline: datetime | None = None
    config: dict[str, Any] | None = None
    items: list[dict[str, Any]] | None = Field(
        default=None, min_length=1, max_length=MAX_INLINE_ITEMS
    )
