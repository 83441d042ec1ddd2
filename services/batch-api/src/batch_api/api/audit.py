"""Recording every state-changing call under `/v1` in the audit log.

A call is recorded when it changes or tries to change something (POST, PUT, PATCH, DELETE)
and its key was recognised: the principal that `current_principal` put in the request's
state says who, the method and path say what, the status code says how it ended. Calls
refused before a key was recognised (401) have no tenant to file them under; they are counted
in the HTTP metrics instead."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from batch_api.adapters.audit import AuditLog
from batch_api.domain.principal import Principal

CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Words in a resource's place that name no resource: operations on the whole collection.
NOT_IDS = frozenset({"bulk", "import", "plan"})


def _parts(path: str) -> list[str]:
    """A `/v1` path's segments after `v1`, the template library's two first as one
    (`/v1/library/templates/t_1` → `library.templates`, `t_1`)."""
    parts = [p for p in path.split("/")[2:] if p]
    if len(parts) >= 2 and parts[0] == "library":
        parts = [f"library.{parts[1]}", *parts[2:]]
    return parts


def resource_of(path: str) -> str | None:
    """The id of the resource a `/v1` path names, if any (`/v1/batches/b_1/actions/pause`
    acts on `b_1`)."""
    parts = _parts(path)
    return parts[1] if len(parts) >= 2 and parts[1] not in NOT_IDS else None


def action_of(method: str, path: str) -> str:
    """A short name of what the call did, e.g. `batches.pause`, `batches.create`, `keys.delete`."""
    parts = _parts(path)
    if not parts:
        return method.lower()
    kind = parts[0]
    if len(parts) == 2 and parts[1] in NOT_IDS:
        return f"{kind}.{parts[1]}"
    if len(parts) >= 4 and parts[2] == "actions":
        return f"{kind}.{parts[3]}"
    if len(parts) >= 5 and parts[2] == "jobs":
        return f"{kind}.jobs.{parts[4]}"
    if len(parts) >= 3:
        return f"{kind}.{parts[2]}"
    verbs = {"POST": "create", "PUT": "replace", "PATCH": "update", "DELETE": "delete"}
    return f"{kind}.{verbs.get(method, method.lower())}"


class AuditTrail:
    def __init__(self, app: ASGIApp, log: AuditLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if (
            scope["type"] != "http"
            or scope["method"] not in CHANGING
            or not path.startswith("/v1/")
        ):
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})  # shared with the request's state, set by the app
        method = str(scope["method"])
        recorded = False

        async def record(status: int) -> None:
            nonlocal recorded
            recorded = True
            who = scope["state"].get("principal")
            if not isinstance(who, Principal):
                return
            await self.log.record(
                {
                    "at": datetime.now(UTC),
                    "tenant": who.tenant,
                    "key_id": who.key_id,
                    "user": who.user,
                    "role": who.role,
                    "method": method,
                    "path": path,
                    "action": action_of(method, path),
                    "resource": resource_of(path),
                    "status": status,
                    "outcome": "ok" if status < 400 else "refused",
                }
            )

        async def watched(message: Message) -> None:
            # Recorded before the caller hears the result: whoever sees a response can find
            # its record.
            if message["type"] == "http.response.start":
                await record(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            if not recorded:
                await record(500)
