"""A large batch uploaded in chunks and run to completion, with the peak RSS of every
service sampled once a second.

    python bench/scale.py [--jobs 1000000] [--chunk 10000]

The batch is created as a draft, filled with `--chunk`-item NDJSON uploads, submitted and
run; each service's resident memory is read from /proc (psutil) throughout, and a progress
line (jobs completed, peak RSS so far) is printed every `--every` seconds, so a run stopped
early still says what it measured. The target: every service under 300 MB. At the throughput
of docs/performance.md a million no-op jobs take most of an hour; `make bench` runs it with
fewer jobs and says how many."""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from pathlib import Path

import httpx
import orjson
import psutil
from benchstack import BenchStack, bench_stack, wait_done

LIMIT_MB = 300


class RssSampler(threading.Thread):
    """Peak RSS per service name, sampled every `interval` seconds until stopped."""

    def __init__(self, stack: BenchStack, interval: float = 1.0, every: float = 60.0) -> None:
        super().__init__(daemon=True)
        self.stack, self.interval, self.every = stack, interval, every
        self.peak_mb: dict[str, float] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for name, pid in self.stack.pids().items():
                try:
                    proc = psutil.Process(pid)
                    rss = proc.memory_info().rss + sum(
                        c.memory_info().rss for c in proc.children(recursive=True)
                    )
                except psutil.Error:
                    continue
                self.peak_mb[name] = max(self.peak_mb.get(name, 0.0), rss / 2**20)
            self.done.wait(self.interval)


def progress(
    sampler: RssSampler, began: float, api: httpx.AsyncClient, batch_id: str
) -> asyncio.Task[None]:
    """Prints jobs completed and the peak RSS so far every `sampler.every` seconds."""

    async def report() -> None:
        while True:
            await asyncio.sleep(sampler.every)
            body = (await api.get(f"/v1/batches/{batch_id}")).json()
            peaks = ", ".join(f"{n} {mb:.0f}" for n, mb in sorted(sampler.peak_mb.items()))
            print(
                f"[{time.perf_counter() - began:6.0f} s] {body['status']}: "
                f"{body['progress']['completed']:,} completed; peak RSS MB: {peaks}",
                flush=True,
            )

    return asyncio.create_task(report())


async def run(stack: BenchStack, sampler: RssSampler, jobs: int, chunk: int) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=stack.url, headers=stack.headers, timeout=300) as api:
        r = await api.post(
            "/v1/batches",
            json={
                "name": f"scale {jobs}",
                "job_type": "demo.sleep",
                "draft": True,
                "config": {"max_concurrent_jobs": 10_000},
            },
        )
        r.raise_for_status()
        batch_id = r.json()["id"]
        line = orjson.dumps({}) + b"\n"
        began = time.perf_counter()
        reporter = progress(sampler, began, api, batch_id)
        for start in range(0, jobs, chunk):
            size = min(chunk, jobs - start)
            up = await api.post(
                f"/v1/batches/{batch_id}/items",
                content=line * size,
                headers={"Content-Type": "application/x-ndjson"},
            )
            up.raise_for_status()
        uploaded = time.perf_counter()
        (await api.post(f"/v1/batches/{batch_id}/submit")).raise_for_status()
        await wait_done(api, batch_id, jobs, within_s=6 * 3600)
        finished = time.perf_counter()
        reporter.cancel()
    return {"upload_s": uploaded - began, "run_s": finished - uploaded, "jobs": jobs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=10_000)
    parser.add_argument("--every", type=float, default=60.0, help="seconds between progress")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with bench_stack(2) as stack:
        sampler = RssSampler(stack, every=args.every)
        sampler.start()
        try:
            figures = asyncio.run(run(stack, sampler, args.jobs, args.chunk))
        finally:
            sampler.done.set()
            sampler.join()
    print(
        f"{args.jobs:,} jobs: uploaded in {figures['upload_s']:.0f} s "
        f"({args.jobs / figures['upload_s']:.0f} items/s), ran in {figures['run_s']:.0f} s "
        f"({args.jobs / figures['run_s']:.0f} jobs/s)"
    )
    for name, mb in sorted(sampler.peak_mb.items()):
        print(f"  peak RSS {name:12s} {mb:7.0f} MB  {'PASS' if mb < LIMIT_MB else 'FAIL'}")
    if args.json:
        args.json.write_text(json.dumps({**figures, "peak_rss_mb": sampler.peak_mb}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
