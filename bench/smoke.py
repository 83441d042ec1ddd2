"""The reduced throughput check CI runs (`make bench-smoke`, under two minutes): 2,000 no-op
jobs end to end with the raw relay beside them, compared with the figure recorded in
docs/performance.md. Exits 1 if Batchyard falls below a third of that figure (these machines
are noisy; the full `make bench` is the real measure)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from throughput import measure, report

RECORDED = re.compile(r"bench-smoke baseline: \*\*([0-9,]+) jobs/s\*\*")
DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"


def recorded_rate() -> float:
    found = RECORDED.search(DOC.read_text(encoding="utf-8"))
    if found is None:
        raise SystemExit(f"{DOC} records no 'bench-smoke baseline: **N jobs/s**'")
    return float(found.group(1).replace(",", ""))


def main() -> int:
    floor = recorded_rate() / 3
    figures = measure(2000, 2, {}, celery=False)
    report(figures)
    rate = figures["batchyard_per_s"]
    verdict = "PASS" if rate >= floor else "FAIL"
    print(
        f"bench-smoke: {rate:.0f} jobs/s; floor {floor:.0f} (a third of the recorded "
        f"{floor * 3:.0f}): {verdict}"
    )
    return 0 if rate >= floor else 1


if __name__ == "__main__":
    sys.exit(main())
