"""Draft editing: list a batch's items, remove some by id or by a filter while the batch is
`draft` or `uploading` (adding is `BatchService.add_items`). After submission every edit is a
409: the items are the jobs.

Removal leaves tombstones in the upload chunks (see `adapters/registry.py`); submission
compacts them away, so the jobs are the remaining items, dense and in upload order."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from batch_api.adapters.registry import BatchRegistry, live_items
from batch_api.api.problems import Problem
from batch_api.domain.items import item_id, matches, parse_item_id
from batch_api.domain.lifecycle import UNSUBMITTED
from batch_api.domain.principal import Principal
from batch_api.handlers.batches import BatchService, Loaded
from batch_api.item_schemas import ItemPage, ItemPublic, ItemsRemoved

EDITABLE = sorted(UNSUBMITTED)


def _fixed(status: str, what: str = "items can only be removed") -> Problem:
    return Problem(
        409,
        "Conflict",
        f"{what} before the batch is submitted; the batch is {status}",
        kind="conflict",
        batch_status=status,
    )


@dataclass
class DraftItems:
    batches: BatchService
    registry: BatchRegistry

    async def page(self, batch_id: str, who: Principal, limit: int, cursor: str | None) -> ItemPage:
        """The batch's items in upload order, without removed ones; `next_cursor` continues
        after the last one returned. Chunks are read one by one by `_id`."""
        found = await self.batches.load(batch_id, who)
        doc = found.doc
        after = (0, -1)
        if cursor:
            parsed = parse_item_id(cursor)
            if parsed is None:
                raise Problem(400, "Invalid cursor", "the cursor is not one this API returned")
            after = parsed
        settled = doc.get("phase") == "submitted" and (
            not doc.get("edited") or doc.get("compacted")
        )
        page: list[ItemPublic] = []
        for number in range(after[0], int(doc.get("chunks") or 0)):
            chunk = await self.registry.chunk(batch_id, number)
            if chunk is None:
                continue
            first = int(chunk.get("first_index") or 0)
            for offset, item in live_items(chunk):
                if number == after[0] and offset <= after[1]:
                    continue
                index = first + offset if settled else None
                page.append(ItemPublic(id=item_id(number, offset), index=index, item=item))
                if len(page) > limit:
                    break
            if len(page) > limit:
                break
        next_cursor = page[limit - 1].id if len(page) > limit else None
        return ItemPage(
            items=page[:limit], next_cursor=next_cursor, total=int(doc.get("total") or 0)
        )

    async def remove_one(self, batch_id: str, item: str, who: Principal) -> ItemsRemoved:
        """Removes one item; a 404 problem if the draft holds no such item (any more)."""
        found = await self._editable(batch_id, who)
        place = parse_item_id(item)
        live = await self._live_offsets(batch_id, place[0]) if place is not None else set()
        if place is None or place[1] not in live:
            raise Problem(404, "Not found", f"batch {batch_id} holds no item {item}")
        return await self._remove(found, {place[0]: {place[1]}}, who)

    async def remove_ids(self, batch_id: str, ids: list[str], who: Principal) -> ItemsRemoved:
        """Removes the items with these ids; ids removed before are skipped, ids the draft
        never held are a 422 problem (and nothing is removed)."""
        found = await self._editable(batch_id, who)
        wanted: dict[int, set[int]] = defaultdict(set)
        unknown: list[str] = []
        for text in ids:
            place = parse_item_id(text)
            if place is None or place[0] >= int(found.doc.get("chunks") or 0):
                unknown.append(text)
            else:
                wanted[place[0]].add(place[1])
        for number, offsets in wanted.items():
            size = await self._size(batch_id, number)
            unknown += [item_id(number, o) for o in sorted(offsets) if o >= size]
        if unknown:
            shown = ", ".join(unknown[:10]) + (" …" if len(unknown) > 10 else "")
            raise Problem(
                422,
                "Unknown items",
                f"batch {batch_id} holds no item {shown}",
                kind="unknown-items",
                unknown=unknown[:100],
            )
        return await self._remove(found, wanted, who)

    async def remove_matching(
        self, batch_id: str, match: dict[str, Any], who: Principal
    ) -> ItemsRemoved:
        """Removes every item whose fields equal `match` (read chunk by chunk)."""
        found = await self._editable(batch_id, who)
        wanted: dict[int, set[int]] = {}
        for number in range(int(found.doc.get("chunks") or 0)):
            chunk = await self.registry.chunk(batch_id, number)
            if chunk is None:
                continue
            offsets = {o for o, item in live_items(chunk) if matches(item, match)}
            if offsets:
                wanted[number] = offsets
        return await self._remove(found, wanted, who)

    async def _editable(self, batch_id: str, who: Principal) -> Loaded:
        if not who.may("operator"):
            raise Problem(403, "Forbidden", "a viewer key cannot remove items", kind="forbidden")
        found = await self.batches.load(batch_id, who)
        if found.status not in UNSUBMITTED:
            raise _fixed(found.status)
        return found

    async def _remove(
        self, found: Loaded, wanted: dict[int, set[int]], who: Principal
    ) -> ItemsRemoved:
        """Tombstones the items after marking the batch edited (both refused once it was
        submitted); the count follows while it is still a draft."""
        batch_id = found.doc["_id"]
        async with self.batches.edit_lock(batch_id):
            removed = await self._tombstone(found, wanted, who)
        doc = await self.registry.get(batch_id) or found.doc
        return ItemsRemoved(batch_id=batch_id, removed=removed, total=int(doc.get("total") or 0))

    async def _tombstone(self, found: Loaded, wanted: dict[int, set[int]], who: Principal) -> int:
        batch_id = found.doc["_id"]
        removed = 0
        if wanted:
            if not await self.registry.mark_edited(batch_id, EDITABLE):
                raise _fixed((await self.batches.load(batch_id, who)).status)
            for number in sorted(wanted):
                done = await self.registry.remove_items(batch_id, number, wanted[number])
                if done is None:
                    now = await self.batches.load(batch_id, who)
                    raise _fixed(
                        now.status,
                        f"the batch was submitted while items were removed ({removed} were "
                        "removed before it was); items can only be removed",
                    )
                removed += done
            if removed:
                await self.registry.add_to_total(batch_id, EDITABLE, -removed)
        return removed

    async def _size(self, batch_id: str, number: int) -> int:
        chunk = await self.registry.chunk(batch_id, number)
        return len((chunk or {}).get("items") or [])

    async def _live_offsets(self, batch_id: str, number: int) -> set[int]:
        chunk = await self.registry.chunk(batch_id, number)
        return {o for o, _ in live_items(chunk)} if chunk is not None else set()
