"""The failure digest: which log lines a failed test run prints, and from which logs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from devstack.digest import digest, notable_lines

pytestmark = pytest.mark.unit


def test_notable_lines_keep_errors_with_their_tracebacks_and_drop_the_rest() -> None:
    log = "\n".join(
        [
            "INFO started",
            "WARNING scheduler lease lost; standing by",
            "INFO dispatching",
            "ERROR apply failed",
            "Traceback (most recent call last):",
            '  File "x.py", line 1, in f',
            "pymongo.errors.OperationFailure: SQLITE_BUSY",
            "INFO recovered",
        ]
    )
    assert notable_lines(log) == [
        "WARNING scheduler lease lost; standing by",
        "ERROR apply failed",
        "Traceback (most recent call last):",
        '  File "x.py", line 1, in f',
        "pymongo.errors.OperationFailure: SQLITE_BUSY",
    ]
    assert notable_lines(log, limit=2) == [
        '  File "x.py", line 1, in f',
        "pymongo.errors.OperationFailure: SQLITE_BUSY",
    ]


def test_digest_reads_only_logs_written_during_the_run(tmp_path: Path) -> None:
    old = tmp_path / "e2e-old" / "logs" / "scheduler.log"
    new = tmp_path / "e2e-new" / "logs" / "scheduler.log"
    quiet = tmp_path / "e2e-new" / "logs" / "reporter.log"
    chaos = tmp_path / "chaos-1" / "logs" / "executor.log"
    for path, text in (
        (old, "ERROR old"),
        (new, "ERROR new\nINFO ok"),
        (quiet, "INFO ok"),
        (chaos, "ERROR on purpose"),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    began = time.time() - 5
    os.utime(old, (began - 60, began - 60))
    assert digest(tmp_path, began) == "--- e2e-new/logs/scheduler.log ---\nERROR new"
    assert digest(tmp_path / "missing", began) == ""
