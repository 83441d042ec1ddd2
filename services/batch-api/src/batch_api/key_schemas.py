"""HTTP shapes of `/v1/keys`: API keys of the caller's tenant."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from batch_api.domain.principal import Role


class RateLimit(BaseModel):
    """A key's own request rate limit (a token bucket in each API process)."""

    model_config = ConfigDict(extra="forbid")

    per_s: float = Field(gt=0, le=100_000, description="requests a second, on average")
    burst: int = Field(ge=1, le=1_000_000, description="requests at once")


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    role: Role
    user: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="who the key acts as; the name if unset",
    )
    rate_limit: RateLimit | None = Field(
        default=None, description="this key's request rate limit; the API's default if unset"
    )


class KeyPublic(BaseModel):
    """A key's record; the key itself is never shown again after creation."""

    id: str
    name: str
    role: Role
    user: str
    created_at: datetime
    revoked: bool
    revoked_at: datetime | None = None
    rate_limit: RateLimit | None = None

    @classmethod
    def of(cls, doc: dict[str, Any]) -> KeyPublic:
        return cls(
            id=doc["key_id"],
            name=doc.get("name", ""),
            role=doc["role"],
            user=doc.get("user", ""),
            created_at=doc["created_at"],
            revoked=bool(doc.get("revoked")),
            revoked_at=doc.get("revoked_at"),
            rate_limit=doc.get("rate_limit"),
        )


class KeyCreated(KeyPublic):
    key: str = Field(description="the secret; shown only in this response")


class KeyList(BaseModel):
    items: list[KeyPublic]
