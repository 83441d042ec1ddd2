"""Finding installed job types through the `batchyard.job_types` entry points."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from jobkit.jobtype import ENTRY_POINT_GROUP, JobType

log = logging.getLogger(__name__)


def discover_job_types(group: str = ENTRY_POINT_GROUP) -> dict[str, JobType]:
    """Every installed job type by name. An entry point may name a `JobType` subclass (for
    example one made by `@job_type`) or an instance. A plugin that fails to load, or loads as
    something else, is logged and skipped: one broken plugin does not stop a host."""
    found: dict[str, JobType] = {}
    for ep in entry_points(group=group):
        try:
            target = ep.load()
            instance = target() if isinstance(target, type) else target
        except Exception:
            log.exception("job type %s could not be loaded", ep.name)
            continue
        if not isinstance(instance, JobType):
            log.error("entry point %s is not a JobType", ep.name)
            continue
        if instance.name in found:
            log.error("job type %s is installed twice; keeping the first", instance.name)
            continue
        found[instance.name] = instance
    return found
