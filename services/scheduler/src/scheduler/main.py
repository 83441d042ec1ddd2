"""`batchyard-scheduler`: runs the scheduler with health and metrics on BATCHYARD_HTTP_PORT."""

from __future__ import annotations

from scheduler.bootstrap import SchedulerSettings, bootstrap
from servicekit.logging import configure_logging
from servicekit.runtime import serve
from servicekit.tracing import configure_tracing


def main() -> None:
    settings = SchedulerSettings()
    configure_logging("scheduler", settings.log_level)
    configure_tracing("scheduler")
    app, _ = bootstrap(settings)
    serve(app, settings)


if __name__ == "__main__":
    main()
