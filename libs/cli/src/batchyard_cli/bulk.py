"""What `batchyard bulk` sends and how it ends: the request body from ids or filters, and the
exit code from the per-batch results (pure functions, unit-tested)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from batchyard_cli.errors import InputError, Problem, api_error
from batchyard_cli.exit_codes import ExitCode, for_error, worst

MAX_BULK = 1000
ACTIONS = ("cancel", "retry", "archive", "delete", "pause", "resume")


@dataclass(frozen=True)
class Selection:
    """The batches a bulk action is for: explicit ids, or listing filters (not both)."""

    ids: Sequence[str] = ()
    statuses: Sequence[str] = ()
    tag: str | None = None
    job_type: str | None = None
    q: str | None = None
    priority: str | None = None
    owner: str | None = None
    created_after: str | None = None
    created_before: str | None = None

    def filter(self) -> dict[str, Any]:
        statuses = [s.strip() for text in self.statuses for s in text.split(",") if s.strip()]
        found: dict[str, Any] = {"status": statuses or None}
        for key in ("tag", "job_type", "q", "priority", "owner", "created_after", "created_before"):
            found[key] = getattr(self, key)
        return {k: v for k, v in found.items() if v is not None}

    def listing_params(self) -> dict[str, str]:
        """The same filter as `GET /v1/batches` parameters (status comma-separated)."""
        return {k: ",".join(v) if isinstance(v, list) else str(v) for k, v in self.filter().items()}


def bulk_body(action: str, selection: Selection) -> dict[str, Any]:
    """`POST /v1/batches/bulk` body; `InputError` unless exactly one of ids and filters."""
    if action not in ACTIONS:
        raise InputError(f"unknown bulk action {action!r}: one of {', '.join(ACTIONS)}")
    ids = list(dict.fromkeys(selection.ids))
    filters = selection.filter()
    if ids and filters:
        raise InputError(
            "give either --id or filters (--status, --tag, --job-type, --q...), not both"
        )
    if not ids and not filters:
        raise InputError(
            "say which batches: --id ID (repeatable) or filters such as --status failed, --tag x"
        )
    if len(ids) > MAX_BULK:
        raise InputError(f"at most {MAX_BULK} batches at once, not {len(ids)}")
    return {"action": action, "ids": ids} if ids else {"action": action, "filter": filters}


def exit_code(results: Sequence[Mapping[str, Any]]) -> ExitCode:
    """0 when every batch took the action; else the worst code its refusals would have given
    as single calls (3 for an unknown batch, 5 for a batch in the wrong state...)."""
    codes = [
        for_error(api_error(Problem(int(r.get("status") or 500), "", str(r.get("detail") or ""))))
        for r in results
        if not r.get("ok")
    ]
    return worst(codes)
