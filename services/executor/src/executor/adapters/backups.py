"""Where the executor keeps a job's backup before the job changes anything."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from servicekit.backups import MongoBackups
from servicekit.store import Document


class BackupStore(Protocol):
    async def put(
        self,
        backup_id: str,
        *,
        batch_id: str,
        job_type: str,
        snapshot: dict[str, Any],
        job_id: str | None,
        item: dict[str, Any] | None,
        attempt: int,
        created_at: datetime,
    ) -> tuple[Document, bool]:
        """Stores the backup unless one exists; (the stored record, whether it is new)."""

    async def get(self, backup_id: str) -> Document | None:
        """The backup record, or None."""

    async def mark_completed(
        self, backup_id: str, at: datetime, after: dict[str, str] | None = None
    ) -> None:
        """Records that the job completed, so its change is in place, and the digests of the
        state it left (`JobType.state_of`), if any."""


__all__ = ["BackupStore", "MongoBackups"]
