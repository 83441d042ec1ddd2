"""Discovering job types from the `batchyard.job_types` entry points."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from jobkit import ENTRY_POINT_GROUP, JobType

log = logging.getLogger(__name__)


def discover_job_types() -> dict[str, JobType]:
    """Every installed job type by name; a plugin that fails to load is logged and skipped."""
    found: dict[str, JobType] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
            instance = cls()
        except Exception:
            log.exception("job type %s could not be loaded", ep.name)
            continue
        if not isinstance(instance, JobType):
            log.error("entry point %s is not a JobType", ep.name)
            continue
        found[instance.name] = instance
    return found
