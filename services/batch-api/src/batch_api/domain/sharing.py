"""Who may see and change a shared resource (a template or a schedule): its owner, the users
it is shared with (`shared_with`, see only), the tenant's admins, and everyone in the tenant
when its `visibility` is `tenant` (see only). Never anyone of another tenant."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable
from typing import Any

from batch_api.domain.principal import Principal


def may_see(doc: dict[str, Any], who: Principal) -> bool:
    if doc.get("tenant") != who.tenant:
        return False
    return (
        who.may("admin")
        or doc.get("owner") == who.user
        or doc.get("visibility") == "tenant"
        or who.user in (doc.get("shared_with") or [])
    )


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
