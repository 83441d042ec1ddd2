"""After a failed test run: the lines of the e2e stack's service logs that explain it.

CI keeps only what a run prints, and the logs of the stacks the tests started live in the
clone's `artifacts/`, which is gone afterwards. So a failed `devstack test` prints, for each
service log of the e2e stacks started during this run, its newest warnings and errors (with
the traceback lines that follow them), bounded so that the digest stays short. Chaos stacks
are left out: their logs are full of the failures those tests cause on purpose."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

NOTABLE = re.compile(r"\b(ERROR|CRITICAL|WARNING|Traceback)\b|LeadershipLost")
# Noise of every start: topics and partition leaders not known yet, group rebalances.
ROUTINE = re.compile(
    r"NotLeaderForPartitionError|because it is rebalancing|not found in cluster metadata"
)
CONTINUATION = re.compile(r"^(\s|Traceback|[A-Za-z_][\w.]*(:|$))")
MAX_LINES_PER_LOG = 15
MAX_LOGS = 12


def notable_lines(text: str, limit: int = MAX_LINES_PER_LOG) -> list[str]:
    """The notable lines of one log with the indented/traceback lines that follow each, the
    newest `limit` of them (the end of a log is what precedes a failure)."""
    out: list[str] = []
    following = False
    for line in text.splitlines():
        if NOTABLE.search(line) and not ROUTINE.search(line):
            out.append(line)
            following = True
        elif following and CONTINUATION.match(line):
            out.append(line)
        else:
            following = False
    return out[-limit:]


def logs_since(artifacts: Path, since: float) -> Iterator[Path]:
    """Service logs under `artifacts/e2e-*/logs/` written to after `since` (a timestamp)."""
    if not artifacts.is_dir():
        return
    found = sorted(
        (p for p in artifacts.glob("e2e-*/logs/*.log") if p.stat().st_mtime >= since),
        key=lambda p: p.stat().st_mtime,
    )
    yield from found[-MAX_LOGS:]


def digest(artifacts: Path, since: float) -> str:
    """The digest of every log written since `since`; empty when nothing was notable."""
    parts: list[str] = []
    for log in logs_since(artifacts, since):
        lines = notable_lines(log.read_text(errors="replace"))
        if lines:
            parts.append(f"--- {log.relative_to(artifacts)} ---")
            parts.extend(lines)
    return "\n".join(parts)
