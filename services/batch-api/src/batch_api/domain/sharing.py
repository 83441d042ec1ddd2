"""Who may see and change a shared resource (a template or a schedule): its owner, the users
it is shared with (`shared_with`, see only), the tenant's admins, and everyone in the tenant
when its `visibility` is `tenant` (see only). Never anyone of another tenant."""

from __future__ import annotations

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
