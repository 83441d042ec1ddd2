"""`make bench`: every benchmark in one run, each printing its figures and targets.

Throughput against the relay and Celery (10,000 jobs), latency, scale-out with 1, 2 and 4
executors, the large batch with memory sampled (`BENCH_SCALE_JOBS`, 50,000 by default so
the suite stays under 20 minutes at today's throughput; the million-job run is
`python bench/scale.py --jobs 1000000`), and a consolidation of 2,000 jobs rolled back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

STEPS = [
    ["throughput.py", "--jobs", "10000"],
    ["latency.py"],
    ["scaleout.py", "--jobs", "3000"],
    ["scale.py", "--jobs", os.environ.get("BENCH_SCALE_JOBS", "50000")],
    ["rollback.py", "--jobs", "2000"],
]


def main() -> int:
    failed = 0
    for step in STEPS:
        print(f"\n=== {' '.join(step)}", flush=True)
        failed |= subprocess.run([sys.executable, str(HERE / step[0]), *step[1:]]).returncode
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
