"""Announcing this executor's job types in the store's `job_types` collection, where the API
reads the names, descriptions and input/output schemas. Schemas are stored as JSON strings
(JSON Schema keys such as `$defs` are not valid field names in every store)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase

from jobkit import JobType
from servicekit.store import Document


async def announce_job_types(
    db: AsyncDatabase[Document], executor_id: str, job_types: dict[str, JobType]
) -> None:
    now = datetime.now(UTC)
    for name, job_type in job_types.items():
        output = job_type.output_schema()
        await db["job_types"].update_one(
            {"_id": name},
            {
                "$set": {
                    "description": job_type.description,
                    "input_schema_json": json.dumps(job_type.input_schema(), sort_keys=True),
                    "output_schema_json": json.dumps(output, sort_keys=True) if output else None,
                    "supports_rollback": job_type.supports_rollback(),
                    "isolation": job_type.isolation,
                    "announced_at": now,
                    f"executors.{executor_id.replace('.', '_')}": now,
                }
            },
            upsert=True,
        )
