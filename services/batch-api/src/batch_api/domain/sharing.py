"""Who may see and change a shared resource (a batch, a template or a schedule): its owner,
the users it is shared with (`shared_with`: they see it; operators among them may act on a
batch), the tenant's admins, and everyone in the tenant when its `visibility` is `tenant`.
Never anyone of another tenant. Only the owner and admins change a resource's sharing.
Templates and schedules are private unless said otherwise; batches are visible to their
tenant unless made private (and batches stored before visibility existed are too)."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable
from typing import Any

from batch_api.domain.principal import Principal


def may_see(doc: dict[str, Any], who: Principal, default: str = "private") -> bool:
    if doc.get("tenant") != who.tenant:
        return False
    return (
        who.may("admin")
        or doc.get("owner") == who.user
        or doc.get("visibility", default) == "tenant"
        or who.user in (doc.get("shared_with") or [])
    )


def may_see_batch(doc: dict[str, Any], who: Principal) -> bool:
    return may_see(doc, who, default="tenant")


def visible_batches_query(who: Principal) -> dict[str, Any] | None:
    """The store filter that keeps the batches `who` may see (None: all of the tenant's)."""
    if who.may("admin"):
        return None
    return {
        "$or": [
            {"visibility": {"$ne": "private"}},
            {"owner": who.user},
            {"shared_with": who.user},
        ]
    }


def may_change(doc: dict[str, Any], who: Principal) -> bool:
    return may_see(doc, who) and (who.may("admin") or doc.get("owner") == who.user)


async def visible_page(
    docs: AsyncIterable[dict[str, Any]],
    who: Principal,
    keep: Callable[[dict[str, Any]], bool],
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """The first `limit` of `docs` (newest first) the caller may see and `keep` accepts, and
    the cursor of the next page (None on the last); stops reading once the page is full."""
    page: list[dict[str, Any]] = []
    async for doc in docs:
        if not may_see(doc, who) or not keep(doc):
            continue
        if len(page) == limit:
            return page, page[-1]["_id"]
        page.append(doc)
    return page, None
