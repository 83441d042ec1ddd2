"""HTTP shapes of `/v1/keys`: API keys of the caller's tenant."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from batch_api.domain.principal import Role


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


class KeyPublic(BaseModel):
    """A key's record; the key itself is never shown again after creation."""

    id: str
    name: str
    role: Role
    user: str
    created_at: datetime
    revoked: bool
    revoked_at: datetime | None = None

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
        )


class KeyCreated(KeyPublic):
    key: str = Field(description="the secret; shown only in this response")


class KeyList(BaseModel):
    items: list[KeyPublic]
