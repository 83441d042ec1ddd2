"""HTTP shapes of a batch's items (`/v1/batches/{id}/items`): listing and removing the items
of a draft."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from batch_api.schemas import MAX_INLINE_ITEMS

MAX_ITEM_PAGE = 1000


class ItemPublic(BaseModel):
    id: str = Field(description="`<chunk>-<offset>`: stable while the batch is a draft.")
    index: int | None = Field(
        default=None, description="The job index, once the batch was submitted."
    )
    item: dict[str, Any]


class ItemPage(BaseModel):
    items: list[ItemPublic]
    next_cursor: str | None = None
    total: int = Field(description="Items in the batch now (removed ones not counted).")


class ItemsDelete(BaseModel):
    """Which items to remove: `ids` (as listed), or `match`: every item whose fields equal
    the given values (`{"customer": "acme"}`; a dotted key reaches into nested objects)."""

    model_config = ConfigDict(extra="forbid")

    ids: list[str] | None = Field(default=None, min_length=1, max_length=MAX_INLINE_ITEMS)
    match: dict[str, Any] | None = Field(default=None, min_length=1, max_length=50)

    @model_validator(mode="after")
    def _one_filter(self) -> ItemsDelete:
        if (self.ids is None) == (self.match is None):
            raise ValueError("give exactly one of `ids` and `match`")
        return self


class ItemsRemoved(BaseModel):
    batch_id: str
    removed: int = Field(description="Items removed by this request.")
    total: int = Field(description="Items left in the batch.")
