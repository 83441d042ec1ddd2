"""`/v1/job-types`: the job types executors announce, with their input and output schemas,
whether they can be rolled back and how their jobs are isolated."""

from __future__ import annotations

from fastapi import APIRouter

from batch_api.api.deps import CurrentPrincipal, Reads
from batch_api.schemas import JobTypePublic

router = APIRouter(prefix="/v1/job-types", tags=["job types"])


@router.get("", response_model=list[JobTypePublic])
async def list_job_types(who: CurrentPrincipal, reads: Reads) -> list[JobTypePublic]:
    found = await reads.job_types()
    return [
        JobTypePublic(
            name=name,
            description=doc.get("description", ""),
            input_schema=doc["input_schema"],
            output_schema=doc.get("output_schema"),
            supports_rollback=bool(doc.get("supports_rollback")),
            isolation="process" if doc.get("isolation") == "process" else "inline",
        )
        for name, doc in sorted(found.items())
    ]
