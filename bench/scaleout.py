"""Throughput with 1, 2 and 4 executor processes, and where the CPU went.

    python bench/scaleout.py [--jobs 5000] [--executors 1,2,4]

Each count runs on a fresh isolated stack. Beside jobs/s it prints the CPU seconds each
process group used during the run (the broker, the store, each service kind, read with
psutil), which says what limits throughput on these 2 cores."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import defaultdict
from pathlib import Path

import psutil
from benchstack import KAFKA, MONGO, bench_stack
from throughput import batchyard


def listener(port: int) -> int | None:
    """The PID listening on a loopback TCP port (the broker's, the store's)."""
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            return conn.pid
    return None


def infra_pids() -> dict[str, int]:
    found = {}
    for name, address in (("kafka", KAFKA), ("ferretdb", MONGO)):
        pid = listener(int(address.rsplit(":", 1)[1].split("/", 1)[0]))
        if pid is not None:
            found[name] = pid
    return found


def cpu_by_group(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system) so far, per process group: each service kind (its worker
    children included), the broker and the store this benchmark uses."""
    groups: dict[str, float] = defaultdict(float)
    for name, pid in {**pids, **infra_pids()}.items():
        try:
            proc = psutil.Process(pid)
            procs = [proc, *proc.children(recursive=True)]
            seconds = sum(p.cpu_times().user + p.cpu_times().system for p in procs)
        except psutil.Error:
            continue
        groups[name.split("-")[0] if name.startswith("executor") else name] += seconds
    return dict(groups)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--executors", default="1,2,4")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = []
    for count in [int(x) for x in args.executors.split(",")]:
        with bench_stack(count) as stack:
            before = cpu_by_group(stack.pids())
            seconds = asyncio.run(batchyard(args.jobs, stack.url, stack.key))
            after = cpu_by_group(stack.pids())
        cpu = {k: round(after.get(k, 0) - before.get(k, 0), 1) for k in after}
        results.append({"executors": count, "jobs_per_s": args.jobs / seconds, "cpu_s": cpu})
        busiest = sorted(cpu.items(), key=lambda kv: -kv[1])[:4]
        print(
            f"{count} executor(s): {args.jobs / seconds:8.0f} jobs/s in {seconds:6.1f} s; "
            f"CPU s: " + ", ".join(f"{k} {v}" for k, v in busiest)
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
