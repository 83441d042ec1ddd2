"""How long a rollback takes against the run it undoes: a template library consolidated in
`--jobs` jobs (two templates each, one pair in ten a duplicate, so about a tenth of the jobs
change something), then the batch rolled back over the API, on an isolated stack.

    python bench/rollback.py [--jobs 2000] [--executors 2]

Prints the consolidation's jobs/s (POST to every job completed in the read model), the
rollback's steps/s (POST to the batch `rolled_back`), their ratio, and the rollback service's
peak RSS (sampled each second). No target: the figure an operator waits for when a large
batch is undone."""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time

import httpx
from benchstack import bench_stack, wait_done
from scale import RssSampler

IMPORT_AT_MOST = 10_000  # the API's import limit per request
WORDS = [f"w{n:04d}" for n in range(2000)]


def library(jobs: int, rng: random.Random) -> list[dict[str, object]]:
    """`2 * jobs` templates: unique bodies, and every tenth pair a duplicate of its first."""
    templates: list[dict[str, object]] = []
    for pair in range(jobs):
        body = " ".join(rng.sample(WORDS, 30))
        templates.append({"name": f"t{pair:06d}a", "category": "bench", "body": body})
        twin = body.upper() if pair % 10 == 0 else " ".join(rng.sample(WORDS, 30))
        templates.append({"name": f"t{pair:06d}b", "category": "bench", "body": twin})
    return templates


async def wait_status(
    api: httpx.AsyncClient, batch_id: str, want: str, within_s: float
) -> dict[str, float]:
    """Waits for `want`; returns when (perf_counter) each status was first seen."""
    deadline = time.monotonic() + within_s
    body: dict[str, object] = {}
    seen: dict[str, float] = {}
    while time.monotonic() < deadline:
        body = (await api.get(f"/v1/batches/{batch_id}")).json()
        seen.setdefault(str(body["status"]), time.perf_counter())
        if body["status"] == want:
            return seen
        if body["status"] == "rollback_failed":
            raise RuntimeError(f"rollback of {batch_id} failed: {body}")
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{batch_id} is {body.get('status')}, not {want}")


async def measure(jobs: int, executors: int) -> dict[str, float]:
    with bench_stack(executors) as stack:
        sampler = RssSampler(stack, every=3600)
        sampler.start()
        async with httpx.AsyncClient(base_url=stack.url, headers=stack.headers, timeout=300) as api:
            templates = library(jobs, random.Random(jobs))
            ids: list[str] = []
            for start in range(0, len(templates), IMPORT_AT_MOST):
                chunk = templates[start : start + IMPORT_AT_MOST]
                r = await api.post("/v1/library/templates/import", json={"templates": chunk})
                r.raise_for_status()
                ids += r.json()["ids"]
            began = time.perf_counter()
            r = await api.post(
                "/v1/library/consolidations",
                json={"template_ids": ids, "templates_per_job": 2, "max_concurrent_jobs": 1000},
            )
            r.raise_for_status()
            batch_id, planned = r.json()["batch_id"], r.json()["plan"]["jobs"]
            await wait_done(api, batch_id, planned)
            ran_s = time.perf_counter() - began
            began = time.perf_counter()
            r = await api.post(f"/v1/batches/{batch_id}/actions/rollback", json={})
            r.raise_for_status()
            seen = await wait_status(api, batch_id, "rolled_back", within_s=max(600.0, jobs))
            rolled_s = time.perf_counter() - began
            shown_s = seen.get("rolling_back", seen["rolled_back"]) - began
        sampler.done.set()
    rss = sampler.peak_mb.get("rollback", 0.0)
    return {
        "jobs": planned,
        "run_s": ran_s,
        "rollback_s": rolled_s,
        "shown_s": shown_s,
        "rollback_rss_mb": rss,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--executors", type=int, default=2)
    args = parser.parse_args()
    f = asyncio.run(measure(args.jobs, args.executors))
    jobs = f["jobs"]
    print(f"consolidation, {jobs:,.0f} jobs: {f['run_s']:.1f} s ({jobs / f['run_s']:,.0f} jobs/s)")
    print(
        f"rollback of it: {f['rollback_s']:.1f} s ({jobs / f['rollback_s']:,.0f} steps/s), "
        f"{f['rollback_s'] / f['run_s']:.2f}x the run's time; the rollback service's peak "
        f"RSS {f['rollback_rss_mb']:.0f} MB"
    )
    print(f"the batch showed rolling_back {f['shown_s']:.2f} s after the request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
