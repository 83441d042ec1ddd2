"""`/v1/batches/{id}/items`: list a batch's items; remove items of a draft by id or filter.
(Adding items is `POST /v1/batches/{id}/items` in `routes/batches.py`.)"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from batch_api.api.deps import CurrentPrincipal
from batch_api.handlers.items import DraftItems
from batch_api.item_schemas import MAX_ITEM_PAGE, ItemPage, ItemsDelete, ItemsRemoved

router = APIRouter(prefix="/v1/batches", tags=["items"])


async def draft_items(request: Request) -> DraftItems:
    handler: DraftItems = request.app.state.items
    return handler


Items = Annotated[DraftItems, Depends(draft_items)]


@router.get("/{batch_id}/items", response_model=ItemPage)
async def list_items(
    batch_id: str,
    who: CurrentPrincipal,
    items: Items,
    limit: Annotated[int, Query(ge=1, le=MAX_ITEM_PAGE)] = 100,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
) -> ItemPage:
    """The batch's items in upload order with their ids (removed items are not listed);
    `index` is the job index once the batch was submitted."""
    return await items.page(batch_id, who, limit, cursor)


@router.delete("/{batch_id}/items/{item_id}", response_model=ItemsRemoved)
async def remove_item(
    batch_id: str, item_id: str, who: CurrentPrincipal, items: Items
) -> ItemsRemoved:
    """Remove one item of a `draft` or `uploading` batch; 404 if it holds no such item, 409
    once the batch was submitted."""
    return await items.remove_one(batch_id, item_id, who)


@router.post("/{batch_id}/items/delete", response_model=ItemsRemoved)
async def remove_items(
    batch_id: str, body: ItemsDelete, who: CurrentPrincipal, items: Items
) -> ItemsRemoved:
    """Remove many items of a `draft` or `uploading` batch: `{"ids": [...]}` or `{"match":
    {"field": value}}` (equal values; dotted keys reach into nested objects). 409 once the
    batch was submitted."""
    if body.ids is not None:
        return await items.remove_ids(batch_id, body.ids, who)
    return await items.remove_matching(batch_id, body.match or {}, who)
