"""Who is calling: an API key resolves to a principal with a tenant, a user and a role."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from batch_api.domain.ratelimit import Limit

Role = Literal["viewer", "operator", "admin"]
_RANK = {"viewer": 0, "operator": 1, "admin": 2}


@dataclass(frozen=True)
class Principal:
    key_id: str
    tenant: str
    user: str
    role: Role
    limit: Limit | None = None
    """The key's own request rate limit; the API's default when None."""

    def may(self, role: Role) -> bool:
        return _RANK[self.role] >= _RANK[role]
