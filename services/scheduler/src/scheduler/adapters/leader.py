"""The scheduler's leader lease in the store: one active scheduler, any number of standbys.

The document `{_id: "scheduler", holder, token, expires_at}` names the leader. A standby takes
it only after it expired; each take increments `token` (the fencing token). Times are epoch
seconds of the instances' clocks, which are assumed to agree within a fraction of the TTL."""

from __future__ import annotations

import time
from collections.abc import Callable

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from servicekit.store import Document

LEASE_ID = "scheduler"


class MongoLeaderLease:
    def __init__(
        self,
        db: AsyncDatabase[Document],
        holder: str,
        ttl_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.leases = db["sched_leader"]
        self.holder = holder
        self.ttl_s = ttl_s
        self.clock = clock
        self.token: int | None = None
        self.valid_until = 0.0

    async def try_acquire(self) -> bool:
        """Takes the lease if nobody holds it or its holder let it expire."""
        now = self.clock()
        doc = await self.leases.find_one({"_id": LEASE_ID})
        if doc is None:
            try:
                await self.leases.insert_one(
                    {
                        "_id": LEASE_ID,
                        "holder": self.holder,
                        "token": 1,
                        "expires_at": now + self.ttl_s,
                    }
                )
            except DuplicateKeyError:
                return False
            return self._held(1, now)
        if doc["holder"] != self.holder and doc["expires_at"] > now:
            return False
        token = int(doc["token"]) + 1
        result = await self.leases.update_one(
            {"_id": LEASE_ID, "token": doc["token"]},
            {"$set": {"holder": self.holder, "token": token, "expires_at": now + self.ttl_s}},
        )
        return result.matched_count == 1 and self._held(token, now)

    async def renew(self) -> bool:
        """Extends the lease; False means another instance holds it now."""
        now = self.clock()
        result = await self.leases.update_one(
            {"_id": LEASE_ID, "holder": self.holder, "token": self.token},
            {"$set": {"expires_at": now + self.ttl_s}},
        )
        return result.matched_count == 1 and self._held(self.token or 0, now)

    def still_valid(self) -> bool:
        """Whether this instance may act, by its own clock (a local fence: a process that was
        paused past its lease finds it expired before it writes anything)."""
        return self.token is not None and self.clock() < self.valid_until

    def _held(self, token: int, now: float) -> bool:
        self.token = token
        # act only within a safety margin, so a standby never overlaps the old leader
        self.valid_until = now + self.ttl_s * 0.8
        return True
